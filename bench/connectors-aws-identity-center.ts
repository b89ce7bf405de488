/**
 * aws-identity-center against the fake Identity Center (src/connectors/aws-identity-center/testing/):
 * real SDK clients, SigV4 and JSON 1.1 over loopback, assignments that land `operationMs` after
 * the call (20 ms here; AWS takes seconds) and conflicts while another operation on the same
 * permission set is in progress. So the figures are Lapse's and the SDK's share of a revoke plus
 * the fake's delay and the polling step, not AWS's latency.
 *
 * 1. revoke p50/p99: provision (untimed), then revoke, one grant at a time.
 * 2. burst: 1,000 grants (10 permission sets × 100 users) revoked 32 at a time, with 10% of calls
 *    throttled (the SDK retries them) on top of the fake's conflicts. A revoke that still fails is
 *    called again, as the engine would; at the end every assignment must be gone.
 */
import type { RevokeResult } from '../src/connectors/index.js';
import { AwsIdentityCenterConnector } from '../src/connectors/aws-identity-center/index.js';
import { openIdentityCenterFake } from '../src/connectors/aws-identity-center/testing/index.js';
import { AwsError } from '../src/connectors/aws/testing/aws-fake.js';
import type { ConnectorBench } from './connectors.js';
import { grantOn, inLanes, revokeLatency, signal } from './connectors.js';
import { summarise, type BenchResult } from './stats.js';

const ACCOUNT = '111122223333';
const IN_FLIGHT = 32;

export const awsIdentityCenterBench: ConnectorBench = {
  connector: 'aws-identity-center',
  async run({ quick }) {
    const ic = await openIdentityCenterFake();
    const results: BenchResult[] = [];
    try {
      ic.model.accounts.add(ACCOUNT);
      ic.model.addUser('bench@example.com');
      const connector = new AwsIdentityCenterConnector();
      const single = ic.target('bench-aws-ic', { admin: { permissionSet: ic.model.addPermissionSet('Admin'), accounts: [ACCOUNT] } });
      const latency = await revokeLatency(connector, single, 'admin', quick ? 20 : 100, 'aws-identity-center');
      results.push({ ...latency, entitlement: 'assignment', fake_operation_ms: ic.model.operationMs });

      const sets = 10;
      const perSet = quick ? 20 : 100;
      const entitlements = Object.fromEntries(
        Array.from({ length: sets }, (_, i) => [`set${i}`, { permissionSet: ic.model.addPermissionSet(`Burst${i}`), accounts: [ACCOUNT] }]),
      );
      const burstTarget = ic.target('bench-aws-ic-burst', entitlements, { maxAttempts: 5 });
      const grants = Array.from({ length: sets * perSet }, (_, i) => {
        const user = ic.model.addUser(`burst-${i}@example.com`);
        const entitlement = `set${i % sets}`;
        ic.model.assign(entitlements[entitlement]!.permissionSet, ACCOUNT, user.userId);
        return {
          ...grantOn(burstTarget, entitlement),
          principalId: user.userName,
          userId: user.userId,
          permissionSet: entitlements[entitlement]!.permissionSet,
        };
      });
      const conflictsBefore = ic.model.counts.conflicts;
      let calls = 0;
      let throttles = 0;
      const stop = ic.fake.inject(() => (++calls % 10 === 0 ? (throttles++, new AwsError('ThrottlingException', 'Rate exceeded')) : undefined));
      let engineRetries = 0;
      const latencies: number[] = [];
      const started = performance.now();
      try {
        await inLanes(grants, IN_FLIGHT, async (grant) => {
          const t0 = performance.now();
          for (;;) {
            try {
              const result = (await connector.revoke(grant, null, signal())) as RevokeResult | undefined;
              if (!result?.propagationPending) break;
            } catch {
              engineRetries++;
            }
          }
          latencies.push(performance.now() - t0);
        });
      } finally {
        stop();
      }
      const wallMs = performance.now() - started;
      const left = grants.filter((g) => ic.model.hasAssignment(g.permissionSet, ACCOUNT, g.userId)).length;
      if (left > 0 || latencies.length !== grants.length)
        throw new Error(`aws-identity-center burst: ${left} assignments left, ${grants.length - latencies.length} revokes lost`);
      results.push(
        summarise('connector_revoke_burst', 'aws-identity-center', latencies, wallMs, {
          total_s: Math.round(wallMs) / 1000,
          in_flight: IN_FLIGHT,
          permission_sets: sets,
          throttles_absorbed: throttles,
          conflicts_absorbed: ic.model.counts.conflicts - conflictsBefore,
          engine_retries: engineRetries,
          left_assigned: left,
        }),
      );
    } finally {
      await ic.close();
    }
    return results;
  },
};
