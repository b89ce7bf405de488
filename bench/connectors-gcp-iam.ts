import { grantIdOf } from '../src/connectors/gcp-iam/iam-policy.js';
import { LAPSE_MEMBER, openFakeProject, PROJECT } from '../src/connectors/gcp-iam/testing/fake-project.js';
import type { ConnectorBench } from './connectors.js';
import { grantOn, inLanes, revokeLatency, signal } from './connectors.js';
import { summarise, type BenchResult } from './stats.js';

/**
 * gcp-iam against the fake Cloud Resource Manager on loopback (src/connectors/gcp-iam/testing/):
 * the cost of Lapse's side of a revoke (read, write, read back, through the real REST client),
 * not Google's latency or its propagation to enforcement. The burst revokes 1,000 grants on one
 * project, 32 in flight like the engine, while the fake throttles every 5th request (429) and
 * another writer moves the etag before every 3rd write; it fails unless every binding is gone.
 */
const IN_FLIGHT = 32;

export const gcpIamBench: ConnectorBench = {
  connector: 'gcp-iam',
  async run({ quick }) {
    const project = await openFakeProject();
    const { fake, connector } = project;
    const results: BenchResult[] = [];
    try {
      const target = project.target('bench-gcp');
      results.push(await revokeLatency(connector, target, 'viewer', quick ? 50 : 200, 'gcp-iam'));

      const grants = Array.from({ length: 1_000 }, () => grantOn(target, 'viewer'));
      await inLanes(grants, IN_FLIGHT, async (grant) => void (await connector.provision(grant, signal())));
      const before = { ...fake.sent, writes: writes() };
      Object.assign(fake.injected, { failEvery: { status: 429, nth: 5 }, concurrentWriteEvery: 3 });
      let pending = 0;
      const latencies: number[] = [];
      const started = performance.now();
      await inLanes(grants, IN_FLIGHT, async (grant) => {
        const t0 = performance.now();
        for (let i = 0; (await connector.revoke(grant, null, signal()))?.propagationPending; i++) {
          pending++;
          if (i >= 10) throw new Error(`gcp-iam burst: ${grant.grantId} never confirmed`);
        }
        latencies.push(performance.now() - t0);
      });
      const wallMs = performance.now() - started;
      Object.assign(fake.injected, { failEvery: null, concurrentWriteEvery: 0 });
      const left = (fake.policy(PROJECT).bindings ?? []).filter((b) => grantIdOf(b) !== null).length;
      if (left > 0 || latencies.length !== grants.length)
        throw new Error(`gcp-iam burst: ${left} bindings left, ${grants.length - latencies.length} revokes lost`);
      results.push(
        summarise('connector_revoke_burst', 'gcp-iam', latencies, wallMs, {
          total_s: Math.round(wallMs) / 1000,
          in_flight: IN_FLIGHT,
          throttles_absorbed: fake.sent.throttled - before.throttled,
          etag_conflicts_absorbed: fake.sent.conflicts - before.conflicts,
          policy_writes: writes() - before.writes,
          propagation_pending: pending,
          bindings_left: left,
        }),
      );
    } finally {
      await project.close();
    }
    return results;

    function writes(): number {
      return fake.calls.filter((c) => c.method === 'setIamPolicy' && c.caller === LAPSE_MEMBER && c.status === 200).length;
    }
  },
};
