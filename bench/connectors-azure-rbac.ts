/**
 * azure-rbac against the local HTTPS fakes of Entra ID and ARM (src/connectors/azure-rbac/testing/),
 * in this process: the cost of Lapse's side (SDK pipeline, TLS, the read-back after each removal),
 * not Azure's latency or its real throttling limits.
 *
 * - revoke p50/p99 for a PIM assignment older than five minutes (AdminRemove), one in its first
 *   five minutes (PIM refuses; Lapse deletes the role assignment under it), and a plain assignment;
 * - a burst: 1,000 PIM grants of distinct principals revoked 32 at a time, with every 7th ARM
 *   request answered 429 + Retry-After, each revoke called again (as the engine does) until it
 *   returns without error or propagation pending. Asserts every assignment is gone.
 */
import { AzureRbacConnector } from '../src/connectors/azure-rbac/index.js';
import { BUILT_IN_ROLES } from '../src/connectors/azure-rbac/testing/arm-state.js';
import { startFakeAzure } from '../src/connectors/azure-rbac/testing/fake-azure.js';
import type { GrantSpec } from '../src/connectors/index.js';
import { grantOn, inLanes, revokeLatency, signal, type ConnectorBench } from './connectors.js';
import { summarise, type BenchResult } from './stats.js';

const IN_FLIGHT = 32;

async function revokeUntilDone(connector: AzureRbacConnector, grant: GrantSpec, counts: { errors: number; pending: number }): Promise<void> {
  for (let call = 0; call < 50; call++) {
    try {
      const result = await connector.revoke(grant, null, signal());
      if (!result?.propagationPending) return;
      counts.pending++;
    } catch {
      counts.errors++;
    }
  }
  throw new Error(`revoke of ${grant.grantId} did not finish in 50 calls`);
}

export const azureRbacBench: ConnectorBench = {
  connector: 'azure-rbac',
  async run({ quick }) {
    const az = await startFakeAzure();
    const connector = new AzureRbacConnector();
    const results: BenchResult[] = [];
    try {
      const principals: Record<string, string> = { 'bench@example.com': az.addUser() };
      const count = quick ? 200 : 1_000;
      for (let i = 0; i < count; i++) principals[`bench-${i}@example.com`] = az.addUser();
      const target = az.target({ pim: { role: 'Reader' }, direct: { role: 'Reader', mode: 'assignment' } }, { objectIds: principals }, 'bench-azure');
      const iterations = quick ? 30 : 150;

      az.arm.state.minActiveMs = 0;
      results.push({ ...(await revokeLatency(connector, target, 'pim', iterations, 'azure-rbac')), entitlement: 'pim (AdminRemove)' });
      az.arm.state.minActiveMs = 5 * 60_000;
      results.push({ ...(await revokeLatency(connector, target, 'pim', iterations, 'azure-rbac')), entitlement: 'pim (first 5 min: delete the assignment)' });
      results.push(await revokeLatency(connector, target, 'direct', iterations, 'azure-rbac'));

      az.arm.state.minActiveMs = 0;
      const grants = Array.from({ length: count }, (_, i) => ({ ...grantOn(target, 'pim'), principalId: `bench-${i}@example.com` }));
      await inLanes(grants, 8, async (grant) => void (await connector.provision(grant, signal())));
      az.arm.throttleEvery = 7;
      const throttledBefore = az.arm.throttled;
      const counts = { errors: 0, pending: 0 };
      const latencies: number[] = [];
      const started = performance.now();
      await inLanes(grants, IN_FLIGHT, async (grant) => {
        const t0 = performance.now();
        await revokeUntilDone(connector, grant, counts);
        latencies.push(performance.now() - t0);
      });
      const wallMs = performance.now() - started;
      az.arm.throttleEvery = 0;
      const scope = target.entitlements.get('pim')!.settings.scope as string;
      const left = grants.filter((g) => az.arm.state.hasRole(principals[g.principalId]!, BUILT_IN_ROLES.Reader!, scope));
      if (left.length > 0 || az.arm.state.instanceView().length > 0) throw new Error(`${left.length} grants still have access after the burst`);
      results.push(
        summarise('connector_revoke_burst', 'azure-rbac', latencies, wallMs, {
          total_s: Math.round(wallMs) / 1000,
          in_flight: IN_FLIGHT,
          grants: count,
          revoked: count - left.length,
          throttles_absorbed: az.arm.throttled - throttledBefore,
          revoke_errors_retried: counts.errors,
          propagation_pending_rechecks: counts.pending,
        }),
      );
    } finally {
      await az.close();
    }
    return results;
  },
};
