import { sql } from 'kysely';
import type { PersonBaseline, RiskHistory, SeenKind } from '../domain/risk.js';
import type { Executor } from './executor.js';

/**
 * Risk baselines (docs/monitoring.md#risk): read per request by a handful of primary-key lookups,
 * and updated incrementally as requests happen. Nothing here scans a person's history.
 */

export interface RiskQuestion {
  readonly principalId: string;
  readonly groups: readonly string[];
  readonly target: string;
  readonly entitlement: string;
  /** The client attributes given with this request (network prefix, user agent, country, ASN). */
  readonly seen: Partial<Record<SeenKind, string>>;
}

/** Groups counted for peers: a person in thousands of groups is judged by the first 50. */
const MAX_PEER_GROUPS = 50;

/**
 * The history bearing on one request. With `lock`, the person's baseline row is locked until the
 * transaction ends, so two requests of one person at once do not lose an observation.
 */
export async function readRiskHistory(db: Executor, question: RiskQuestion, options: { lock?: boolean } = {}): Promise<RiskHistory> {
  // NB. Two round trips, not five: the person's row (locked) first, then everything else in one
  // statement. Round trips, not the keyed reads, are what a decision pays for here.
  let personQuery = db.selectFrom('risk_people').select('baseline').where('principal_id', '=', question.principalId);
  if (options.lock) personQuery = personQuery.forUpdate();
  const person = await personQuery.executeTakeFirst();
  const groups = question.groups.slice(0, MAX_PEER_GROUPS);
  const seenEntries = Object.entries(question.seen).filter((e): e is [SeenKind, string] => typeof e[1] === 'string');
  const groupList = groups.length === 0 ? sql`SELECT NULL::text WHERE false` : sql`VALUES ${sql.join(groups.map((g) => sql`(${g}::text)`))}`;
  const seenList =
    seenEntries.length === 0
      ? sql`SELECT NULL::text, NULL::text WHERE false`
      : sql`VALUES ${sql.join(seenEntries.map(([kind, value]) => sql`(${kind}::text, ${value}::text)`))}`;
  const { rows } = await sql<{
    target_requests: number | null;
    peers: { users: number; used: number | null }[] | null;
    seen: { kind: SeenKind; any_seen: boolean; this_seen: boolean }[] | null;
  }>`
    SELECT
      (SELECT requests FROM risk_person_targets
        WHERE principal_id = ${question.principalId} AND target = ${question.target} AND entitlement = ${question.entitlement}) AS target_requests,
      (SELECT json_agg(json_build_object('users', g.users, 'used', t.users))
        FROM risk_groups g
        LEFT JOIN risk_group_targets t ON t.group_name = g.group_name AND t.target = ${question.target} AND t.entitlement = ${question.entitlement}
        WHERE g.group_name IN (SELECT * FROM (${groupList}) AS q(name))) AS peers,
      (SELECT json_agg(json_build_object(
          'kind', k.kind,
          'any_seen', EXISTS (SELECT 1 FROM risk_seen s WHERE s.principal_id = ${question.principalId} AND s.kind = k.kind),
          'this_seen', EXISTS (SELECT 1 FROM risk_seen s WHERE s.principal_id = ${question.principalId} AND s.kind = k.kind AND s.value = k.value)))
        FROM (${seenList}) AS k(kind, value)) AS seen`.execute(db);
  const row = rows[0];
  const target = { requests: row?.target_requests ?? 0 };
  const peerRows = row?.peers ?? [];
  const seenRows = row?.seen ?? [];
  let peers: RiskHistory['peers'];
  for (const row of peerRows) {
    const used = row.used ?? 0;
    if (!peers || used / Math.max(1, row.users) > peers.usedTarget / Math.max(1, peers.users)) peers = { users: row.users, usedTarget: used };
  }
  const seen: Partial<Record<SeenKind, boolean>> = {};
  for (const row of seenRows) if (row.any_seen) seen[row.kind] = row.this_seen;
  return { person: person?.baseline, targetRequests: target.requests, peers, seen };
}

/** Records one request in the baselines: the person's folded baseline, the entitlement, the groups, the client attributes. */
export async function recordRiskObservation(db: Executor, question: RiskQuestion, baseline: PersonBaseline, now: Date): Promise<void> {
  await db
    .insertInto('risk_people')
    .values({ principal_id: question.principalId, baseline: JSON.stringify(baseline), updated_at: now })
    .onConflict((oc) => oc.column('principal_id').doUpdateSet({ baseline: JSON.stringify(baseline), updated_at: now }))
    .execute();
  const target = await db
    .insertInto('risk_person_targets')
    .values({ principal_id: question.principalId, target: question.target, entitlement: question.entitlement, requests: 1, first_at: now, last_at: now })
    .onConflict((oc) => oc.columns(['principal_id', 'target', 'entitlement']).doUpdateSet({ requests: sql`risk_person_targets.requests + 1`, last_at: now }))
    .returning('requests')
    .executeTakeFirstOrThrow();
  const groups = question.groups.slice(0, MAX_PEER_GROUPS);
  if (groups.length > 0) {
    const joined = await db
      .insertInto('risk_group_members')
      .values(groups.map((group_name) => ({ group_name, principal_id: question.principalId })))
      .onConflict((oc) => oc.doNothing())
      .returning('group_name')
      .execute();
    if (joined.length > 0) {
      await db
        .insertInto('risk_groups')
        .values(joined.map((g) => ({ group_name: g.group_name, users: 1 })))
        .onConflict((oc) => oc.column('group_name').doUpdateSet({ users: sql`risk_groups.users + 1` }))
        .execute();
    }
    if (target.requests === 1) {
      await db
        .insertInto('risk_group_targets')
        .values(groups.map((group_name) => ({ group_name, target: question.target, entitlement: question.entitlement, users: 1 })))
        .onConflict((oc) => oc.columns(['group_name', 'target', 'entitlement']).doUpdateSet({ users: sql`risk_group_targets.users + 1` }))
        .execute();
    }
  }
  const seen = Object.entries(question.seen).filter((e): e is [SeenKind, string] => typeof e[1] === 'string');
  if (seen.length > 0) {
    await db
      .insertInto('risk_seen')
      .values(seen.map(([kind, value]) => ({ principal_id: question.principalId, kind, value, first_at: now, last_at: now })))
      .onConflict((oc) => oc.columns(['principal_id', 'kind', 'value']).doUpdateSet({ last_at: now }))
      .execute();
  }
}
