/**
 * The kubernetes connector against the fake API server (src/connectors/kubernetes/testing/) over
 * HTTPS on loopback, as Lapse's least-privilege identity: the cost of the SDK, TLS and the
 * connector's requests (revoke = get, delete, get per object), not of a real API server, etcd or
 * its RBAC watch cache. The burst injects throttling (every 20th request answered 429 with
 * Retry-After: 1, as API Priority and Fairness would) and checks every grant's binding is gone.
 */
import { KubernetesConnector } from '../src/connectors/kubernetes/index.js';
import { openScratchCluster } from '../src/connectors/kubernetes/testing/scratch-cluster.js';
import type { BenchResult } from './stats.js';
import { summarise } from './stats.js';
import { grantOn, inLanes, revokeLatency, signal, type ConnectorBench } from './connectors.js';

/** Same as the engine's target calls in flight per revocation batch (src/engine/revocation.ts). */
const IN_FLIGHT = 32;
const THROTTLE_EVERY = 20;

export const kubernetesBench: ConnectorBench = {
  connector: 'kubernetes',
  async run({ quick }) {
    const scratch = await openScratchCluster();
    const connector = new KubernetesConnector();
    const results: BenchResult[] = [];
    try {
      const target = scratch.target('bench-k8s', {
        'payments-view': { kind: 'ClusterRole', name: 'view', namespace: 'payments' },
        robot: { kind: 'ClusterRole', name: 'view', namespace: 'payments', subject: 'serviceAccount', serviceAccountNamespace: 'lapse-grants' },
      });
      results.push({ ...(await revokeLatency(connector, target, 'payments-view', quick ? 50 : 200, 'kubernetes')), entitlement: 'rolebinding' });
      results.push({ ...(await revokeLatency(connector, target, 'robot', quick ? 50 : 200, 'kubernetes')), entitlement: 'serviceaccount' });

      const grants = Array.from({ length: quick ? 200 : 1_000 }, () => grantOn(target, 'payments-view'));
      await inLanes(grants, IN_FLIGHT, async (grant) => void (await connector.provision(grant, signal())));
      const { stats, faults } = scratch.server;
      const throttledBefore = stats.throttled;
      faults.throttleEvery(THROTTLE_EVERY, 1);
      const latencies: number[] = [];
      let failed = 0;
      const started = performance.now();
      await inLanes(grants, IN_FLIGHT, async (grant) => {
        const t0 = performance.now();
        const result = await connector.revoke(grant, null, signal()).catch(() => 'failed' as const);
        if (result !== undefined) failed++;
        latencies.push(performance.now() - t0);
      });
      const wallMs = performance.now() - started;
      faults.throttleEvery(0);
      const left = scratch.server.cluster.all('rolebindings').filter((b) => b.metadata.labels?.['lapse.dev/target'] === 'bench-k8s').length;
      if (failed > 0 || left > 0) throw new Error(`kubernetes burst: ${failed} revokes failed or pending, ${left} bindings left`);
      results.push(
        summarise('connector_revoke_burst', 'kubernetes', latencies, wallMs, {
          total_s: Math.round(wallMs) / 1000,
          in_flight: IN_FLIGHT,
          throttled_every: THROTTLE_EVERY,
          throttles_absorbed: stats.throttled - throttledBefore,
          bindings_left: left,
        }),
      );
    } finally {
      await scratch.close();
    }
    return results;
  },
};
