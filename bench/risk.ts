import { sql } from 'kysely';
import { parseConfig } from '../src/config/index.js';
import { evaluatePolicy } from '../src/domain/policy/index.js';
import { assessRisk, assessmentWithSignals, emptyBaseline, observeRequest } from '../src/domain/risk.js';
import { readRiskHistory, type Store } from '../src/store/index.js';
import { summarise, type BenchResult } from './stats.js';

/**
 * Risk (docs/monitoring.md#risk): the lookup the engine does inside every decision's transaction,
 * on baselines that summarise a large history, and the CEL evaluation of a policy reading risk.
 * The lookup reads the baselines only (never the requests table), so what matters is their size:
 * `people` people with `perPerson` requests each, spread over 40 entitlements and 20 groups, with
 * 3 networks and 2 user agents each.
 */
export async function benchRiskLookup(store: Store, backend: string, people: number, perPerson: number, lookups: number): Promise<BenchResult> {
  const db = store.db;
  let baseline = emptyBaseline();
  for (let i = 0; i < perPerson; i++) {
    baseline = observeRequest(baseline, { durationMs: (1 + (i % 4)) * 3_600_000, now: new Date(Date.UTC(2026, 0, 5 + (i % 5), 9 + (i % 8))) });
  }
  const json = JSON.stringify(baseline);
  const seeded = performance.now();
  await sql`INSERT INTO risk_people (principal_id, baseline, updated_at)
    SELECT 'user' || g, ${json}::jsonb, now() FROM generate_series(1, ${people}) g`.execute(db);
  // Each person used 8 of the 40 entitlements.
  await sql`INSERT INTO risk_person_targets (principal_id, target, entitlement, requests, first_at, last_at)
    SELECT 'user' || g, 'target' || ((g + k * 5) % 40), 'role', ${Math.max(1, Math.floor(perPerson / 8))}, now(), now()
    FROM generate_series(1, ${people}) g, generate_series(0, 7) k`.execute(db);
  await sql`INSERT INTO risk_group_members (group_name, principal_id) SELECT 'group' || (g % 20), 'user' || g FROM generate_series(1, ${people}) g`.execute(db);
  await sql`INSERT INTO risk_groups (group_name, users) SELECT 'group' || k, ${Math.ceil(people / 20)} FROM generate_series(0, 19) k`.execute(db);
  await sql`INSERT INTO risk_group_targets (group_name, target, entitlement, users)
    SELECT 'group' || k, 'target' || t, 'role', ${Math.ceil(people / 40)} FROM generate_series(0, 19) k, generate_series(0, 39) t`.execute(db);
  await sql`INSERT INTO risk_seen (principal_id, kind, value, first_at, last_at)
    SELECT 'user' || g, 'network', '10.' || (g % 250) || '.' || n || '.0/24', now(), now() FROM generate_series(1, ${people}) g, generate_series(0, 2) n
    UNION ALL
    SELECT 'user' || g, 'userAgent', md5(g::text || '-' || n), now(), now() FROM generate_series(1, ${people}) g, generate_series(0, 1) n`.execute(db);
  await sql`ANALYZE`.execute(db);
  const seedMs = performance.now() - seeded;

  const latencies = new Array<number>(lookups);
  const started = performance.now();
  for (let i = 0; i < lookups; i++) {
    const person = 1 + ((i * 7919) % people);
    const question = {
      principalId: `user${person}`,
      groups: [`group${person % 20}`, 'everyone'],
      target: `target${i % 40}`,
      entitlement: 'role',
      seen: { network: `10.${person % 250}.${i % 4}.0/24`, userAgent: 'f'.repeat(32) },
    };
    // NB. Timed inside the transaction: its commit (a WAL flush, since the person's row is locked)
    // is the decision's commit, which writes the request and its audit anyway.
    await db.transaction().execute(async (tx) => {
      const t0 = performance.now();
      const history = await readRiskHistory(tx, question, { lock: true });
      assessRisk(history, { durationMs: 3_600_000, now: new Date() });
      latencies[i] = performance.now() - t0;
    });
  }
  return summarise('risk_lookup', backend, latencies, performance.now() - started, {
    people,
    requests_of_history: people * perPerson,
    seed_s: Math.round(seedMs / 100) / 10,
    note: 'the locked lookup and the scoring inside a transaction, as in a decision (commit not timed)',
  });
}

const CONFIG = `
version: 1
targets:
  prod-db:
    connector: noop
    entitlements: { readonly: {} }
policies:
  - name: sre
    subjects: { groups: [sre] }
    entitlements: ["prod-db/*"]
    conditions: 'risk.score < 50 && !risk.newTarget && !risk.untrustedDevice && !("many requests in the last hour" in risk.reasons)'
    autoApprove: true
`;

/** Policy decision latency with a condition over `risk` (the CEL budget: p99 ≤ 50 µs). */
export function benchRiskPolicyDecision(count: number): BenchResult {
  const { policies } = parseConfig(CONFIG, 'bench-risk.yaml', {});
  const input = {
    principal: { id: 'alice', kind: 'user' as const, groups: ['sre'] },
    target: 'prod-db',
    entitlement: 'readonly',
    durationMs: 3_600_000,
    reason: 'Investigating INC-1',
    ticket: undefined,
    kind: 'access' as const,
    client: {},
    now: new Date('2026-06-01T10:00:00Z'),
    risk: assessmentWithSignals(['offHours']),
  };
  for (let i = 0; i < 2_000; i++) evaluatePolicy(policies, input);
  const latencies = new Array<number>(count);
  const started = performance.now();
  for (let i = 0; i < count; i++) {
    const t0 = performance.now();
    const decision = evaluatePolicy(policies, input);
    latencies[i] = performance.now() - t0;
    if (decision.outcome !== 'approved') throw new Error(`risk policy bench: unexpected ${decision.outcome}: ${decision.reasons.join('; ')}`);
  }
  return summarise('policy_decision_risk', 'none', latencies, performance.now() - started);
}
