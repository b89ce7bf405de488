import { sql, type Selectable } from 'kysely';
import { newId } from '../domain/ids.js';
import type { KnownGrant } from '../domain/reconciliation.js';
import type { Executor } from './executor.js';
import type { FindingsTable } from './schema.js';

/**
 * Reconciliation's storage: the grants a run compares with, its findings, and its runs. A finding is keyed by (target, entitlement, account, kind)
 * while open: a run that sees it again refreshes it, a run that no longer sees it resolves it.
 */

export type FindingKind = FindingsTable['kind'];
export type FindingStatus = FindingsTable['status'];

export interface Finding {
  readonly id: string;
  readonly target: string;
  readonly entitlement: string;
  readonly account: string;
  readonly principalId: string;
  readonly kind: FindingKind;
  readonly grantId: string | null;
  readonly status: FindingStatus;
  readonly firstSeenAt: Date;
  readonly lastSeenAt: Date;
  readonly resolvedAt: Date | null;
  readonly remediatedAt: Date | null;
  readonly detail: Readonly<Record<string, unknown>>;
}

export interface FindingKey {
  readonly target: string;
  readonly entitlement: string;
  readonly account: string;
  readonly kind: FindingKind;
}

export interface ObservedFinding extends FindingKey {
  readonly principalId: string;
  readonly grantId: string | null;
  readonly detail: Record<string, unknown>;
}

function toFinding(row: Selectable<FindingsTable>): Finding {
  const date = (value: Date | string | null) => (value === null ? null : new Date(value));
  return {
    id: row.id,
    target: row.target,
    entitlement: row.entitlement,
    account: row.account,
    principalId: row.principal_id,
    kind: row.kind,
    grantId: row.grant_id,
    status: row.status,
    firstSeenAt: new Date(row.first_seen_at),
    lastSeenAt: new Date(row.last_seen_at),
    resolvedAt: date(row.resolved_at),
    remediatedAt: date(row.remediated_at),
    detail: row.detail,
  };
}

export function findingKey(key: FindingKey): string {
  return JSON.stringify([key.target, key.entitlement, key.account, key.kind]);
}

/** The target's open findings, locked so two runs of one target decide one after the other. */
export async function openFindingsForUpdate(tx: Executor, target: string): Promise<Finding[]> {
  const rows = await tx.selectFrom('findings').selectAll().where('target', '=', target).where('status', '=', 'open').orderBy('id').forUpdate().execute();
  return rows.map(toFinding);
}

/** Opens a finding; returns it, or null when an open one with the same key appeared meanwhile. */
export async function insertFinding(tx: Executor, observed: ObservedFinding, now: Date): Promise<Finding | null> {
  const row = await tx
    .insertInto('findings')
    .values({
      id: newId('finding'),
      target: observed.target,
      entitlement: observed.entitlement,
      account: observed.account,
      principal_id: observed.principalId,
      kind: observed.kind,
      grant_id: observed.grantId,
      status: 'open',
      first_seen_at: now,
      last_seen_at: now,
      resolved_at: null,
      remediated_at: null,
      detail: JSON.stringify(observed.detail),
    })
    .onConflict((oc) => oc.columns(['target', 'entitlement', 'account', 'kind']).where('status', '=', 'open').doNothing())
    .returningAll()
    .executeTakeFirst();
  return row ? toFinding(row) : null;
}

/** Still observed: moves last_seen_at and keeps the detail current. */
export async function refreshFindings(tx: Executor, refreshed: readonly { id: string; detail: Record<string, unknown> }[], now: Date): Promise<void> {
  if (refreshed.length === 0) return;
  await sql`
    UPDATE findings AS f SET last_seen_at = ${now}, detail = f.detail || v.detail
    FROM unnest(${refreshed.map((r) => r.id)}::text[], ${refreshed.map((r) => JSON.stringify(r.detail))}::jsonb[]) AS v(id, detail)
    WHERE f.id = v.id AND f.status = 'open'`.execute(tx);
}

/**
 * Closes an open finding as resolved (no longer observed) or remediated (Lapse removed the access);
 * returns false when it was no longer open (another run closed it first).
 */
export async function closeFinding(
  tx: Executor,
  id: string,
  status: 'resolved' | 'remediated',
  now: Date,
  detail: Record<string, unknown> = {},
): Promise<boolean> {
  const result = await tx
    .updateTable('findings')
    .set({
      status,
      ...(status === 'resolved' ? { resolved_at: now } : { remediated_at: now }),
      detail: sql`detail || ${JSON.stringify(detail)}::jsonb`,
    })
    .where('id', '=', id)
    .where('status', '=', 'open')
    .executeTakeFirst();
  return Number(result.numUpdatedRows) > 0;
}

/** Adds to an open finding's detail (e.g. why a removal failed). */
export async function annotateFinding(tx: Executor, id: string, detail: Record<string, unknown>): Promise<void> {
  await tx
    .updateTable('findings')
    .set({ detail: sql`detail || ${JSON.stringify(detail)}::jsonb` })
    .where('id', '=', id)
    .execute();
}

/** A target's open findings (oldest first, at most 1,000) and the given ones (those a run just closed). */
export async function findingsOfRun(db: Executor, target: string, alsoIds: readonly string[]): Promise<Finding[]> {
  const rows = await db
    .selectFrom('findings')
    .selectAll()
    .where('target', '=', target)
    .where((eb) => (alsoIds.length > 0 ? eb.or([eb('status', '=', 'open'), eb('id', 'in', [...alsoIds])]) : eb('status', '=', 'open')))
    .orderBy('first_seen_at')
    .orderBy('id')
    .limit(1000 + alsoIds.length)
    .execute();
  return rows.map(toFinding);
}

/** Open findings by kind (the metric to alert on). */
export async function countOpenFindings(db: Executor): Promise<Record<FindingKind, number>> {
  const rows = await db
    .selectFrom('findings')
    .select(['kind', (eb) => eb.fn.countAll<string>().as('n')])
    .where('status', '=', 'open')
    .groupBy('kind')
    .execute();
  const counts: Record<FindingKind, number> = { standing: 0, missing: 0 };
  for (const row of rows) counts[row.kind] = Number(row.n);
  return counts;
}

export interface FindingFilter {
  readonly target?: string;
  readonly status?: FindingStatus;
  readonly kind?: FindingKind;
  /** At most 1,000; default 100. */
  readonly limit?: number;
}

/** One finding by id (locked with forUpdate). */
export async function getFinding(db: Executor, id: string, options: { forUpdate?: boolean } = {}): Promise<Finding | undefined> {
  let query = db.selectFrom('findings').selectAll().where('id', '=', id);
  if (options.forUpdate) query = query.forUpdate();
  const row = await query.executeTakeFirst();
  return row ? toFinding(row) : undefined;
}

/** Findings, most recently seen first. */
export async function listFindings(db: Executor, filter: FindingFilter = {}): Promise<Finding[]> {
  let query = db.selectFrom('findings').selectAll();
  if (filter.target) query = query.where('target', '=', filter.target);
  if (filter.status) query = query.where('status', '=', filter.status);
  if (filter.kind) query = query.where('kind', '=', filter.kind);
  const limit = Math.max(1, Math.min(filter.limit ?? 100, 1000));
  const rows = await query.orderBy('last_seen_at', 'desc').orderBy('id', 'desc').limit(limit).execute();
  return rows.map(toFinding);
}

export interface RunCounts {
  readonly listed: number;
  readonly standing: number;
  readonly missing: number;
  readonly opened: number;
  readonly resolved: number;
  readonly remediated: number;
}

export async function startReconcileRun(tx: Executor, target: string, trigger: 'schedule' | 'manual', now: Date): Promise<string> {
  const row = await tx
    .insertInto('reconcile_runs')
    .values({ target, trigger, started_at: now, finished_at: null, error: null })
    .returning('id')
    .executeTakeFirstOrThrow();
  return String(row.id);
}

export async function finishReconcileRun(tx: Executor, id: string, now: Date, counts: Partial<RunCounts>, error: string | null): Promise<void> {
  await tx
    .updateTable('reconcile_runs')
    .set({ finished_at: now, error, ...counts })
    .where('id', '=', id)
    .execute();
}

/** Runs are kept this long: enough to see a failing target's history, bounded for a busy one. */
const RUN_RETENTION = '30 days';

export async function pruneReconcileRuns(tx: Executor, target: string): Promise<void> {
  await tx
    .deleteFrom('reconcile_runs')
    .where('target', '=', target)
    .where('started_at', '<', sql<Date>`now() - ${RUN_RETENTION}::interval`)
    .execute();
}

export interface ReconcileRun extends RunCounts {
  readonly id: string;
  readonly target: string;
  readonly trigger: 'schedule' | 'manual';
  readonly startedAt: Date;
  readonly finishedAt: Date | null;
  readonly error: string | null;
}

/** The latest runs of a target (or all targets), newest first. */
export async function listReconcileRuns(db: Executor, filter: { target?: string; limit?: number } = {}): Promise<ReconcileRun[]> {
  let query = db.selectFrom('reconcile_runs').selectAll();
  if (filter.target) query = query.where('target', '=', filter.target);
  const rows = await query
    .orderBy('started_at', 'desc')
    .orderBy('id', 'desc')
    .limit(Math.max(1, Math.min(filter.limit ?? 20, 1000)))
    .execute();
  return rows.map((row) => ({
    id: String(row.id),
    target: row.target,
    trigger: row.trigger,
    startedAt: new Date(row.started_at),
    finishedAt: row.finished_at === null ? null : new Date(row.finished_at),
    listed: row.listed,
    standing: row.standing,
    missing: row.missing,
    opened: row.opened,
    resolved: row.resolved,
    remediated: row.remediated,
    error: row.error,
  }));
}

const LIVE_STATUSES = ['provisioning', 'active', 'revoking'] as const;

/**
 * The grants one run compares a target's listing with: every live grant of the target, those that
 * ended since the listing started, and every grant a listed entry names.
 */
export async function grantsForReconciliation(tx: Executor, target: string, since: Date, namedIds: readonly string[]): Promise<KnownGrant[]> {
  const columns = ['id', 'target', 'principal_id', 'entitlement', 'access_key', 'status', 'activated_at', 'ended_at'] as const;
  const rows = await tx
    .selectFrom('grants')
    .select(columns)
    .where('target', '=', target)
    .where((eb) => eb.or([eb('status', 'in', [...LIVE_STATUSES]), eb('ended_at', '>=', since)]))
    .execute();
  const seen = new Set(rows.map((r) => r.id));
  const named = [...new Set(namedIds)].filter((id) => !seen.has(id));
  for (let i = 0; i < named.length; i += 1000) {
    rows.push(
      ...(await tx
        .selectFrom('grants')
        .select(columns)
        .where('id', 'in', named.slice(i, i + 1000))
        .execute()),
    );
  }
  return rows.map((row) => ({
    id: row.id,
    target: row.target,
    principalId: row.principal_id,
    entitlement: row.entitlement,
    accessKey: row.access_key,
    status: row.status,
    activatedAt: row.activated_at === null ? null : new Date(row.activated_at),
    endedAt: row.ended_at === null ? null : new Date(row.ended_at),
  }));
}
