/**
 * Connector benchmarks against the real local servers: how long one revoke takes (the part of
 * "access ends on time" a target controls), and a burst of revokes on PostgreSQL shaped like the
 * engine's (32 calls in flight, src/engine/revocation.ts CALL_CONCURRENCY).
 *
 * Each connector adds one entry to CONNECTOR_BENCHES; `bench/run.ts` runs them all in the
 * `connectors` section. Servers: LAPSE_BENCH_POSTGRES_URL, LAPSE_BENCH_MYSQL_URL,
 * LAPSE_TEST_REDIS_HOST/PORT, LAPSE_TEST_RABBITMQ_API (defaults: the local test servers). Every entry creates its own scratch database/users and removes them.
 */
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { newId } from '../src/domain/ids.js';
import type { Connector, GrantSpec } from '../src/connectors/index.js';
import { PostgresConnector } from '../src/connectors/postgres/postgres-connector.js';
import { openPostgresScratch } from '../src/connectors/postgres/testing/scratch-server.js';
import { MysqlConnector } from '../src/connectors/mysql/mysql-connector.js';
import { openMysqlScratch } from '../src/connectors/mysql/testing/scratch-server.js';
import { SshConnector } from '../src/connectors/ssh/ssh-connector.js';
import { openSshScratch } from '../src/connectors/ssh/testing/scratch-ca.js';
import { RedisConnector } from '../src/connectors/redis/index.js';
import { openRedisScratch } from '../src/connectors/redis/testing/scratch-server.js';
import { RabbitMqConnector } from '../src/connectors/rabbitmq/index.js';
import { openRabbitScratch } from '../src/connectors/rabbitmq/testing/scratch-broker.js';
import { WebhookConnector } from '../src/connectors/webhook/index.js';
import { TokenSystem } from '../src/connectors/webhook/testing/token-system.js';
import type { TargetConfig } from '../src/config/types.js';
import { summarise, type BenchResult } from './stats.js';
import { awsIamRoleBench } from './connectors-aws-iam-role.js';
import { azureRbacBench } from './connectors-azure-rbac.js';
import { awsIdentityCenterBench } from './connectors-aws-identity-center.js';
import { kubernetesBench } from './connectors-kubernetes.js';
import { gcpIamBench } from './connectors-gcp-iam.js';

export interface ConnectorBench {
  readonly connector: string;
  run(options: { quick: boolean }): Promise<BenchResult[]>;
}

const POSTGRES_URL = process.env.LAPSE_BENCH_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const MYSQL_URL = process.env.LAPSE_BENCH_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test';
/** Same as the engine's target calls in flight per revocation batch. */
const ENGINE_CALL_CONCURRENCY = 32;

export const signal = () => AbortSignal.timeout(60_000);

export function grantOn(target: TargetConfig, entitlement: string): GrantSpec {
  return {
    grantId: newId('grant'),
    principalId: 'bench@example.com',
    target,
    entitlement: target.entitlements.get(entitlement)!,
    durationMs: 3_600_000,
    notAfter: new Date(Date.now() + 3_600_000),
    parameters: {},
  };
}

/** p50/p99 of revoke alone: each iteration provisions a fresh grant (untimed), then times its revoke. */
export async function revokeLatency(connector: Connector, target: TargetConfig, entitlement: string, iterations: number, name: string): Promise<BenchResult> {
  const latencies: number[] = [];
  const started = performance.now();
  for (let i = 0; i < iterations; i++) {
    const grant = grantOn(target, entitlement);
    const { handle } = await connector.provision(grant, signal());
    const t0 = performance.now();
    await connector.revoke(grant, handle, signal());
    latencies.push(performance.now() - t0);
  }
  return summarise('connector_revoke', name, latencies, performance.now() - started, {
    entitlement: (target.entitlements.get(entitlement)!.settings.mode as string | undefined) ?? entitlement,
  });
}

/** Runs `work` over `items` with at most `lanes` in flight, like the engine's revocation batch. */
export async function inLanes<T>(items: readonly T[], lanes: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(lanes, items.length) }, async () => {
      while (next < items.length) await work(items[next++]!);
    }),
  );
}

export const CONNECTOR_BENCHES: ConnectorBench[] = [
  {
    connector: 'postgres',
    async run({ quick }) {
      const scratch = await openPostgresScratch(POSTGRES_URL);
      const connector = new PostgresConnector();
      const results: BenchResult[] = [];
      try {
        const target = scratch.target(`bench-pg-${scratch.suffix}`, { readonly: { roles: [scratch.reader] } });
        results.push(await revokeLatency(connector, target, 'readonly', quick ? 20 : 100, 'postgres'));

        for (const maxConnections of [4, 16]) {
          const burstTarget = scratch.target(
            `bench-pg-burst-${maxConnections}-${scratch.suffix}`,
            { readonly: { roles: [scratch.reader] } },
            { maxConnections },
          );
          const grants = Array.from({ length: quick ? 200 : 1_000 }, () => grantOn(burstTarget, 'readonly'));
          await inLanes(grants, 8, async (grant) => void (await connector.provision(grant, signal())));
          const latencies: number[] = [];
          const started = performance.now();
          await inLanes(grants, ENGINE_CALL_CONCURRENCY, async (grant) => {
            const t0 = performance.now();
            await connector.revoke(grant, null, signal());
            latencies.push(performance.now() - t0);
          });
          const wallMs = performance.now() - started;
          results.push(
            summarise('connector_revoke_burst', 'postgres', latencies, wallMs, {
              total_s: Math.round(wallMs) / 1000,
              in_flight: ENGINE_CALL_CONCURRENCY,
              max_connections: maxConnections,
            }),
          );
        }
      } finally {
        await connector.close();
        await scratch.close();
      }
      return results;
    },
  },
  {
    connector: 'mysql',
    async run({ quick }) {
      const scratch = await openMysqlScratch(MYSQL_URL);
      const connector = new MysqlConnector();
      try {
        const target = scratch.target(`bench-my-${scratch.suffix}`, {
          readonly: { grants: [{ privileges: ['SELECT'], database: scratch.database, table: 'facts' }] },
        });
        return [await revokeLatency(connector, target, 'readonly', quick ? 20 : 100, 'mysql')];
      } finally {
        await connector.close();
        await scratch.close();
      }
    },
  },
  {
    // NB. An ssh revoke rewrites the ledger and the KRL (each fsynced, then renamed); sshd reads
    // the KRL on the next login. The second row shows the cost growing with live certificates.
    connector: 'ssh',
    async run({ quick }) {
      const connector = new SshConnector();
      const results: BenchResult[] = [];
      for (const live of [0, quick ? 1_000 : 10_000]) {
        const scratch = openSshScratch();
        try {
          const grant = () => ({ ...grantOn(scratch.target, 'login'), parameters: scratch.parameters });
          if (live > 0) await scratch.seed(live);
          const latencies: number[] = [];
          const started = performance.now();
          for (let i = 0; i < (quick ? 50 : 200); i++) {
            const g = grant();
            const { handle } = await connector.provision(g, signal());
            const t0 = performance.now();
            await connector.revoke(g, handle, signal());
            latencies.push(performance.now() - t0);
          }
          results.push(summarise('connector_revoke', 'ssh', latencies, performance.now() - started, { entitlement: 'certificate', live_certificates: live }));
        } finally {
          scratch.close();
        }
      }
      // A burst shaped like the engine's: concurrent revokes share ledger/KRL writes.
      const scratch = openSshScratch();
      try {
        const grants = Array.from({ length: quick ? 200 : 1_000 }, () => ({ ...grantOn(scratch.target, 'login'), parameters: scratch.parameters }));
        await inLanes(grants, ENGINE_CALL_CONCURRENCY, async (g) => void (await connector.provision(g, signal())));
        const latencies: number[] = [];
        const started = performance.now();
        await inLanes(grants, ENGINE_CALL_CONCURRENCY, async (g) => {
          const t0 = performance.now();
          await connector.revoke(g, null, signal());
          latencies.push(performance.now() - t0);
        });
        const wallMs = performance.now() - started;
        results.push(summarise('connector_revoke_burst', 'ssh', latencies, wallMs, { total_s: Math.round(wallMs) / 1000, in_flight: ENGINE_CALL_CONCURRENCY }));
      } finally {
        scratch.close();
      }
      return results;
    },
  },
  {
    // NB. One short connection per call (connect, CLIENT KILL USER + ACL DELUSER in one round trip, close).
    connector: 'redis',
    async run({ quick }) {
      const scratch = await openRedisScratch();
      try {
        const target = scratch.target(`bench-redis-${scratch.prefix}`, { readonly: { keys: [`${scratch.prefix}:*`], commands: ['+@read', '-@dangerous'] } });
        return [await revokeLatency(new RedisConnector(), target, 'readonly', quick ? 50 : 200, 'redis')];
      } finally {
        await scratch.close();
      }
    },
  },
  {
    // NB. Two management API requests: DELETE the user, DELETE /api/connections/username/<user>.
    connector: 'rabbitmq',
    async run({ quick }) {
      const scratch = await openRabbitScratch();
      try {
        const target = scratch.target(`bench-mq-${scratch.vhost}`, { consumer: { read: '^orders\\.' } });
        return [await revokeLatency(new RabbitMqConnector(), target, 'consumer', quick ? 20 : 100, 'rabbitmq')];
      } finally {
        await scratch.close();
      }
    },
  },
  {
    // NB. Against a receiver in this process on loopback: the cost of signing, one POST and the
    // receiver's signature check, not of any real system behind it.
    connector: 'webhook',
    async run({ quick }) {
      const secret = randomBytes(32).toString('hex');
      const receiver = new TokenSystem(secret);
      receiver.server.listen(0, '127.0.0.1');
      await once(receiver.server, 'listening');
      try {
        const { port } = receiver.server.address() as AddressInfo;
        const target: TargetConfig = {
          name: 'bench-webhook',
          connector: 'webhook',
          description: '',
          settings: { url: `http://127.0.0.1:${port}/lapse`, secret },
          labels: {},
          entitlements: new Map([['agent', { name: 'agent', target: 'bench-webhook', description: '', settings: {}, labels: {} }]]),
        };
        return [await revokeLatency(new WebhookConnector(), target, 'agent', quick ? 100 : 500, 'webhook')];
      } finally {
        receiver.server.close();
      }
    },
  },
  awsIamRoleBench,
  azureRbacBench,
  awsIdentityCenterBench,
  kubernetesBench,
  gcpIamBench,
];

/** Runs every connector's benchmarks; a connector whose server is missing fails the section loudly. */
export async function benchConnectors(quick: boolean, emit: (result: BenchResult) => void): Promise<void> {
  const only = process.env.BENCH_CONNECTORS?.split(',');
  for (const bench of CONNECTOR_BENCHES) {
    if (only && !only.includes(bench.connector)) continue;
    for (const result of await bench.run({ quick })) emit(result);
  }
}
