/**
 * aws-iam-role against the local STS/IAM fake (src/connectors/aws-iam-role/testing/): the cost of
 * the connector's own work and of the SDK (signing, Query serialisation, retries) on loopback, not
 * of AWS, whose IAM writes take far longer and propagate in seconds.
 *
 * - revoke p50/p99: one grant at a time (read the role's lapse-revocations policy, write it, read
 *   it back);
 * - a burst of 1,000 revokes over 10 roles, 32 in flight as the engine runs them, with one IAM or
 *   STS call in ten throttled (which the SDK absorbs by retrying) and stale reads now and then
 *   (which make a revoke report propagation pending; it is called again, as the engine does). At
 *   the end every session must be refused by the fake's policy evaluation.
 */
import { AwsError, AwsFake } from '../src/connectors/aws/testing/aws-fake.js';
import { AwsIamRoleConnector } from '../src/connectors/aws-iam-role/index.js';
import { LAPSE_KEY, StsIamModel } from '../src/connectors/aws-iam-role/testing/sts-iam-model.js';
import type { TargetConfig } from '../src/config/types.js';
import type { ConnectorBench } from './connectors.js';
import { grantOn, inLanes, revokeLatency, signal } from './connectors.js';
import { summarise, type BenchResult } from './stats.js';

const IN_FLIGHT = 32;

function target(endpoint: string, roles: readonly string[]): TargetConfig {
  return {
    name: 'bench-aws',
    connector: 'aws-iam-role',
    description: '',
    settings: { region: 'us-east-1', credentials: LAPSE_KEY, endpoints: { sts: endpoint, iam: endpoint }, maxAttempts: 8, timeoutMs: 10_000 },
    labels: {},
    entitlements: new Map(
      roles.map((roleArn, i) => [`role${i}`, { name: `role${i}`, target: 'bench-aws', description: '', settings: { roleArn }, labels: {} }] as const),
    ),
  };
}

export const awsIamRoleBench: ConnectorBench = {
  connector: 'aws-iam-role',
  async run({ quick }) {
    const fake = new AwsFake('us-east-1');
    const model = new StsIamModel(fake);
    const endpoint = await fake.listen();
    const results: BenchResult[] = [];
    try {
      const single = target(endpoint, [model.addRole('bench-single', { path: '/lapse/' })]);
      results.push(await revokeLatency(new AwsIamRoleConnector(), single, 'role0', quick ? 50 : 200, 'aws-iam-role (fake)'));

      const connector = new AwsIamRoleConnector();
      const roles = Array.from({ length: 10 }, (_, i) => model.addRole(`bench-burst-${i}`, { path: '/lapse/', maxSessionDuration: 43_200 }));
      const burst = target(endpoint, roles);
      const grants = Array.from({ length: quick ? 200 : 1_000 }, (_, i) => grantOn(burst, `role${i % roles.length}`));
      const keys = new Map<string, string>();
      await inLanes(grants, IN_FLIGHT, async (grant) => {
        const { credentials } = await connector.provision(grant, signal());
        keys.set(grant.grantId, credentials!.AccessKeyId!);
      });
      let calls = 0;
      let throttled = 0;
      let stale = 0;
      const remove = fake.inject(() => {
        if (++calls % 10 !== 0) return undefined;
        throttled++;
        return new AwsError('Throttling', 'Rate exceeded', 400);
      });
      const staleEvery = setInterval(() => {
        model.staleReads(1);
        stale++;
      }, 50);
      const writesBefore = connector.writer.writes;
      let pending = 0;
      const latencies: number[] = [];
      const started = performance.now();
      try {
        await inLanes(grants, IN_FLIGHT, async (grant) => {
          const t0 = performance.now();
          while (await connector.revoke(grant, null, signal())) pending++;
          latencies.push(performance.now() - t0);
        });
      } finally {
        clearInterval(staleEvery);
        remove();
      }
      const wallMs = performance.now() - started;
      const lost = grants.filter((g) => !model.refuses(keys.get(g.grantId)!)).length;
      if (lost > 0) throw new Error(`aws-iam-role burst: ${lost} of ${grants.length} revoked grants still have working sessions`);
      results.push(
        summarise('connector_revoke_burst', 'aws-iam-role (fake)', latencies, wallMs, {
          total_s: Math.round(wallMs) / 1000,
          in_flight: IN_FLIGHT,
          roles: roles.length,
          throttles_absorbed: throttled,
          stale_reads_injected: stale,
          propagation_pending_rechecks: pending,
          policy_writes: connector.writer.writes - writesBefore,
          lost,
        }),
      );
    } finally {
      await fake.close();
    }
    return results;
  },
};
