import { sql } from 'kysely';
import { parseConfig } from '../src/config/index.js';
import { connectorRegistry, NoopConnector } from '../src/connectors/index.js';
import { Engine } from '../src/engine/index.js';
import { getGrant, type Store } from '../src/store/index.js';
import { summarise, type BenchResult } from './stats.js';

export const BENCH_CONFIG = `
version: 1
targets:
  bench:
    connector: noop
    entitlements: { readonly: {} }
policies:
  - name: everyone
    subjects: { groups: [bench] }
    entitlements: ["bench/*"]
    duration: { default: 1h, max: 8h }
    autoApprove: true
scheduler: { pollInterval: 1s, connectorTimeout: 10s, provisionAttempts: 5, revokeBackoff: { min: 1s, max: 60s } }
`;

export function benchEngine(store: Store): Engine {
  return new Engine({ store, config: parseConfig(BENCH_CONFIG, 'bench.yaml', {}), connectors: connectorRegistry([new NoopConnector()]) });
}

const principal = (i: number) => ({ id: `user-${i}`, kind: 'user' as const, groups: ['bench'] });

/** Resolves when the engine reports `action` for `subject` (after commit). */
function nextChange(engine: Engine, action: string, subject: string): Promise<void> {
  return new Promise((resolve) => {
    const listener = (entry: { action: string; subject?: string }) => {
      if (entry.action === action && entry.subject === subject) {
        engine.events.off('change', listener);
        resolve();
      }
    };
    engine.events.on('change', listener);
  });
}

/** Auto-approved request -> active, one at a time: the latency a requester feels. */
export async function benchRequestToActive(engine: Engine, backend: string, count: number): Promise<BenchResult> {
  const latencies: number[] = [];
  const started = performance.now();
  for (let i = 0; i < count; i++) {
    const t0 = performance.now();
    const { request } = await engine.submit({ principal: principal(i), target: 'bench', entitlement: 'readonly', reason: 'bench' });
    const grantId = request.grantId!;
    const active = nextChange(engine, 'grant.activated', grantId);
    // The activation may already have committed before we listened.
    if ((await getGrant(engine.store.db, grantId))?.status !== 'active') await active;
    latencies.push(performance.now() - t0);
  }
  return summarise('request_to_active', backend, latencies, performance.now() - started);
}

/** Many requesters at once: how many auto-approved requests per second reach active. */
export async function benchWorkflowThroughput(engine: Engine, backend: string, count: number, parallel: number): Promise<BenchResult> {
  const latencies: number[] = [];
  const started = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (next < count) {
        const i = next++;
        const t0 = performance.now();
        const { request } = await engine.submit({ principal: principal(100_000 + i), target: 'bench', entitlement: 'readonly', reason: 'bench' });
        const active = nextChange(engine, 'grant.activated', request.grantId!);
        if ((await getGrant(engine.store.db, request.grantId!))?.status !== 'active') await active;
        latencies.push(performance.now() - t0);
      }
    }),
  );
  return summarise('workflow_throughput', backend, latencies, performance.now() - started, { parallel });
}

/** Grants with staggered expiries: lag from expiresAt to the revoke confirmed at the target. */
export async function benchIsolatedRevocation(engine: Engine, backend: string, count: number): Promise<BenchResult> {
  const grantIds: string[] = [];
  for (let i = 0; i < count; i++) {
    const { request } = await engine.submit({
      principal: principal(200_000 + i),
      target: 'bench',
      entitlement: 'readonly',
      durationMs: 1_000 + ((i * 37) % 2_000),
      reason: 'bench',
    });
    grantIds.push(request.grantId!);
  }
  return measureLag(engine.store, 'revocation_lag_isolated', backend, grantIds, 60_000);
}

/**
 * A burst: `count` active grants all expiring in the same second. Seeded straight into the tables
 * (requests, grants, expiry jobs) so the benchmark measures revocation, not request intake.
 */
export async function benchBurstRevocation(engine: Engine, backend: string, count: number): Promise<BenchResult> {
  const db = engine.store.db;
  const { rows } = await sql<{ id: string }>`
    WITH seeded AS (
      INSERT INTO requests (id, kind, principal_id, principal, target, entitlement, duration_ms, reason, status, policy, policy_version, reasons, stages, grant_id, created_at, decided_at)
      SELECT 'req_burst' || lpad(n::text, 22, '0'), 'access', 'burst-' || n, jsonb_build_object('id', 'burst-' || n, 'kind', 'user', 'groups', '[]'::jsonb),
             'bench', 'readonly', 2000, 'bench', 'approved', 'everyone', 'bench', '[]', '[]', 'grt_burst' || lpad(n::text, 22, '0'), now(), now()
      FROM generate_series(1, ${count}) AS n
      RETURNING grant_id, principal_id, id)
    INSERT INTO grants (id, request_id, principal_id, target, entitlement, access_key, status, duration_ms, activated_at, expires_at, created_at)
    SELECT grant_id, id, principal_id, 'bench', 'readonly', 'bench/readonly/' || principal_id, 'active', 2000,
           now(), date_trunc('second', now()) + interval '3 seconds', now()
    FROM seeded
    RETURNING id`.execute(db);
  const ids = rows.map((r) => r.id);
  await sql`INSERT INTO jobs (id, kind, subject_id, due_at, created_at)
            SELECT 'job_' || g.id, 'expire', g.id, g.expires_at, now() FROM grants g WHERE g.id LIKE 'grt_burst%'`.execute(db);
  engine.scheduler.poke();
  return measureLag(engine.store, 'revocation_burst', backend, ids, 120_000);
}

async function measureLag(store: Store, scenario: string, backend: string, grantIds: string[], timeoutMs: number): Promise<BenchResult> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const open = await store.db
      .selectFrom('grants')
      .select((eb) => eb.fn.countAll<string>().as('n'))
      .where('id', 'in', grantIds)
      .where('status', '<>', 'revoked')
      .executeTakeFirstOrThrow();
    if (Number(open.n) === 0) break;
    if (Date.now() > deadline) throw new Error(`${scenario}: ${open.n} grants not revoked after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const rows = await store.db.selectFrom('grants').select(['expires_at', 'ended_at']).where('id', 'in', grantIds).execute();
  const lags = rows.map((r) => new Date(r.ended_at!).getTime() - new Date(r.expires_at!).getTime());
  const first = Math.min(...rows.map((r) => new Date(r.expires_at!).getTime()));
  const last = Math.max(...rows.map((r) => new Date(r.ended_at!).getTime()));
  return summarise(scenario, backend, lags, last - first, { all_revoked_ms: last - first });
}
