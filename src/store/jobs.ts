import { sql } from 'kysely';
import { newId } from '../domain/ids.js';
import type { Executor } from './executor.js';
import type { JobKind } from './schema.js';

/**
 * Durable timers. Every expiry, timeout and retry is a row here, compared against the database
 * clock; workers claim due rows with FOR UPDATE SKIP LOCKED so replicas never run one twice.
 */

export interface Job {
  readonly id: string;
  readonly kind: JobKind;
  readonly subjectId: string;
  readonly dueAt: Date;
  readonly attempts: number;
}

/** The jobs of notifications: run by their own worker, so a slow channel never delays the lifecycle's jobs. */
export const NOTIFICATION_JOB_KINDS = ['notify', 'notify_ending', 'notify_reminder', 'notify_escalation', 'webhook'] as const satisfies readonly JobKind[];

/** Which kinds of job a worker takes: only these, or all but these (unset: all). */
export interface JobSelection {
  readonly only?: readonly JobKind[];
  readonly except?: readonly JobKind[];
}

function kindFilter(column: string, selection: JobSelection | undefined) {
  if (selection?.only) return sql`AND ${sql.ref(column)} IN (${sql.join(selection.only.map((k) => sql.lit(k)))})`;
  if (selection?.except) return sql`AND ${sql.ref(column)} NOT IN (${sql.join(selection.except.map((k) => sql.lit(k)))})`;
  return sql``;
}

/** Advisory-lock namespace ("LAPS"); a worker holds (namespace, its key) for as long as it lives. */
export const WORKER_LOCK_NAMESPACE = 0x4c415053;

/**
 * Creates or moves the one job of a kind for a subject. `delayMs` counts from the database's now;
 * a moved job loses any claim on it (the holder's completion no longer matches).
 */
export async function scheduleJob(tx: Executor, kind: JobKind, subjectId: string, at: { delayMs: number } | { at: Date }): Promise<void> {
  const due = 'at' in at ? sql<Date>`${at.at}::timestamptz` : sql<Date>`now() + ${`${Math.max(0, Math.round(at.delayMs))} milliseconds`}::interval`;
  await tx
    .insertInto('jobs')
    .values({
      id: newId('job'),
      kind,
      subject_id: subjectId,
      due_at: due,
      last_error: null,
      locked_by: null,
      locked_until: null,
      created_at: sql<Date>`now()`,
    })
    .onConflict((oc) => oc.columns(['kind', 'subject_id']).doUpdateSet({ due_at: due, locked_by: null, locked_until: null, attempts: 0, last_error: null }))
    .execute();
}

/** Creates one job of a kind for each subject, due at once (new subjects: no conflict expected, none tolerated twice). */
export async function scheduleJobsNow(tx: Executor, kind: JobKind, subjectIds: readonly string[]): Promise<void> {
  if (subjectIds.length === 0) return;
  await tx
    .insertInto('jobs')
    .values(
      subjectIds.map((subjectId) => ({
        id: newId('job'),
        kind,
        subject_id: subjectId,
        due_at: sql<Date>`now()`,
        last_error: null,
        locked_by: null,
        locked_until: null,
        created_at: sql<Date>`now()`,
      })),
    )
    .onConflict((oc) => oc.columns(['kind', 'subject_id']).doNothing())
    .execute();
}

export async function cancelJob(tx: Executor, kind: JobKind, subjectId: string): Promise<void> {
  await tx.deleteFrom('jobs').where('kind', '=', kind).where('subject_id', '=', subjectId).execute();
}

/** How a claim shares a round between principals (see claimDueJobs). */
export interface ClaimFairness {
  /** At most this many jobs of one access key per claim (they would only queue on its lock). */
  readonly perAccessKey?: number;
  /** How many of the earliest due jobs the fair choice looks at. */
  readonly window?: number;
  /** The kinds this worker takes (the notification worker and the lifecycle's split them). */
  readonly kinds?: JobSelection;
}

/**
 * Claims up to `limit` due jobs for this worker. A job is claimable when nobody holds it, its lease
 * ran out, or its holder's advisory lock is gone (the worker died: its work is taken over at once
 * rather than after the lease).
 *
 * NB. Fair, not first-come: among the `window` earliest due jobs, each principal's jobs take turns
 * (everyone's first job, then everyone's second, ...) and one access key gets at most
 * `perAccessKey` jobs per claim. A requester with hundreds of due jobs (say 300 overlapping grants
 * of one entitlement) thus costs everyone else at most a few of its jobs per round instead of a
 * place behind all of them. Jobs not about a grant (request timeouts, reconciliation) are each
 * their own principal. The jobs come back in that order, which is the order they should run in.
 */
export async function claimDueJobs(db: Executor, worker: number, limit: number, leaseMs: number, fairness: ClaimFairness = {}): Promise<Job[]> {
  const perAccessKey = Math.max(1, fairness.perAccessKey ?? limit);
  const window = Math.max(limit, fairness.window ?? limit * 10);
  const claimable = (j: string) => sql`
        ${sql.ref(`${j}.due_at`)} <= now()
        AND (${sql.ref(`${j}.locked_by`)} IS NULL
             OR ${sql.ref(`${j}.locked_until`)} < now()
             OR NOT EXISTS (SELECT 1 FROM pg_locks l
                            WHERE l.locktype = 'advisory' AND l.granted
                              AND l.classid = ${WORKER_LOCK_NAMESPACE}::oid AND l.objid = ${sql.ref(`${j}.locked_by`)}::oid
                              AND l.objsubid = 2))`;
  const { rows } = await sql<{ id: string; kind: JobKind; subject_id: string; due_at: Date; attempts: number; position: string }>`
    WITH due AS (
      SELECT d.id, d.kind, d.subject_id, d.due_at FROM jobs d
      WHERE ${claimable('d')} ${kindFilter('d.kind', fairness.kinds)}
      ORDER BY d.due_at
      LIMIT ${window}
    ), ranked AS (
      SELECT due.id, due.due_at,
             row_number() OVER (PARTITION BY COALESCE(g.access_key, due.kind || ':' || due.subject_id) ORDER BY due.due_at, due.id) AS in_key,
             row_number() OVER (PARTITION BY COALESCE(g.principal_id, due.kind || ':' || due.subject_id) ORDER BY due.due_at, due.id) AS turn
      FROM due LEFT JOIN grants g ON g.id = due.subject_id
    ), chosen AS (
      SELECT id, row_number() OVER (ORDER BY turn, due_at, id) AS position FROM ranked
      WHERE in_key <= ${perAccessKey}
      ORDER BY turn, due_at, id
      LIMIT ${limit}
    )
    UPDATE jobs SET locked_by = ${worker},
                    locked_until = now() + ${`${leaseMs} milliseconds`}::interval,
                    attempts = jobs.attempts + 1
    FROM chosen
    WHERE jobs.id = chosen.id
      AND jobs.id IN (
        -- NB. The claimable test again, here: FOR UPDATE re-checks it against a row another
        -- worker claimed since this statement's snapshot, so two workers never take one job.
        SELECT j.id FROM jobs j
        WHERE j.id IN (SELECT id FROM chosen) AND ${claimable('j')}
        FOR UPDATE SKIP LOCKED)
    RETURNING jobs.id, jobs.kind, jobs.subject_id, jobs.due_at, jobs.attempts, chosen.position`.execute(db);
  return rows
    .sort((a, b) => Number(a.position) - Number(b.position))
    .map((row) => ({ id: row.id, kind: row.kind, subjectId: row.subject_id, dueAt: new Date(row.due_at), attempts: row.attempts }));
}

/** Whether this worker still holds the job (locks the row): a job moved or taken over meanwhile is no longer ours to finish. */
export async function holdsJob(tx: Executor, job: Job, worker: number): Promise<boolean> {
  const row = await tx.selectFrom('jobs').select('id').where('id', '=', job.id).where('locked_by', '=', worker).forUpdate().executeTakeFirst();
  return row !== undefined;
}

/** Done: the job row goes, unless it was re-scheduled meanwhile (then it no longer belongs to us). */
export async function completeJob(tx: Executor, job: Job, worker: number): Promise<void> {
  await tx.deleteFrom('jobs').where('id', '=', job.id).where('locked_by', '=', worker).execute();
}

/**
 * Done for now, due again after `delayMs` (a recurring job such as a target's reconciliation): the
 * claim is released and the attempt count starts over.
 */
export async function rescheduleJob(tx: Executor, job: Job, worker: number, delayMs: number): Promise<void> {
  await tx
    .updateTable('jobs')
    .set({
      due_at: sql<Date>`now() + ${`${Math.max(0, Math.round(delayMs))} milliseconds`}::interval`,
      locked_by: null,
      locked_until: null,
      attempts: 0,
      last_error: null,
    })
    .where('id', '=', job.id)
    .where('locked_by', '=', worker)
    .execute();
}

/**
 * Makes sure a recurring job exists, due within `delayMs`: creates it, or brings an existing one
 * forward (never later) when nobody holds it. Replicas starting together create one row.
 */
export async function ensureJob(tx: Executor, kind: JobKind, subjectId: string, delayMs: number): Promise<void> {
  const due = sql<Date>`now() + ${`${Math.max(0, Math.round(delayMs))} milliseconds`}::interval`;
  await tx
    .insertInto('jobs')
    .values({ id: newId('job'), kind, subject_id: subjectId, due_at: due, last_error: null, locked_by: null, locked_until: null, created_at: sql<Date>`now()` })
    .onConflict((oc) =>
      oc
        .columns(['kind', 'subject_id'])
        .doUpdateSet({ due_at: sql<Date>`LEAST(jobs.due_at, excluded.due_at)` })
        .where('jobs.locked_by', 'is', null),
    )
    .execute();
}

/** Not done: try again after `delayMs` (from the database's now), keeping the attempt count. */
export async function retryJob(tx: Executor, job: Job, worker: number, delayMs: number, error: string): Promise<void> {
  await tx
    .updateTable('jobs')
    .set({
      due_at: sql<Date>`now() + ${`${Math.round(delayMs)} milliseconds`}::interval`,
      locked_by: null,
      locked_until: null,
      last_error: error.slice(0, 2000),
    })
    .where('id', '=', job.id)
    .where('locked_by', '=', worker)
    .execute();
}

/** Not done: try again at `at` (a time the caller worked out, e.g. the end of quiet hours), keeping the attempt count. */
export async function retryJobAt(tx: Executor, job: Job, worker: number, at: Date, error: string): Promise<void> {
  await tx
    .updateTable('jobs')
    .set({ due_at: sql<Date>`${at}::timestamptz`, locked_by: null, locked_until: null, last_error: error.slice(0, 2000) })
    .where('id', '=', job.id)
    .where('locked_by', '=', worker)
    .execute();
}

/**
 * Milliseconds until the next job can be claimed (0 if one is overdue), or null when there is none.
 * A job someone holds counts from the end of its lease, so held work does not make us spin.
 */
export async function msUntilNextJob(db: Executor, kinds?: JobSelection): Promise<number | null> {
  const { rows } = await sql<{ ms: string | null }>`
    SELECT GREATEST(0, EXTRACT(EPOCH FROM (MIN(GREATEST(due_at, COALESCE(locked_until, due_at))) - now())) * 1000)::bigint AS ms
    FROM jobs WHERE true ${kindFilter('kind', kinds)}`.execute(db);
  const ms = rows[0]?.ms;
  return ms === null || ms === undefined ? null : Number(ms);
}

export async function countJobs(db: Executor): Promise<Record<JobKind, number>> {
  const rows = await db
    .selectFrom('jobs')
    .select(['kind', (eb) => eb.fn.countAll<string>().as('n')])
    .groupBy('kind')
    .execute();
  const counts: Record<JobKind, number> = {
    provision: 0,
    expire: 0,
    revoke: 0,
    request_timeout: 0,
    reconcile: 0,
    extend: 0,
    notify: 0,
    notify_ending: 0,
    notify_reminder: 0,
    notify_escalation: 0,
    rotate: 0,
    ldap_sync: 0,
    review_open: 0,
    review_due: 0,
    webhook: 0,
    detect: 0,
  };
  for (const row of rows) counts[row.kind] = Number(row.n);
  return counts;
}

/** Gives claimed jobs back unstarted (the worker is stopping): claimable again at once, attempt not counted. */
export async function releaseJobs(tx: Executor, jobs: readonly Job[], worker: number): Promise<void> {
  if (jobs.length === 0) return;
  await tx
    .updateTable('jobs')
    .set({ locked_by: null, locked_until: null, attempts: sql<number>`GREATEST(attempts - 1, 0)` })
    .where(
      'id',
      'in',
      jobs.map((j) => j.id),
    )
    .where('locked_by', '=', worker)
    .execute();
}

/** Completes many claimed jobs at once (see completeJob). */
export async function completeJobs(tx: Executor, jobs: readonly Job[], worker: number): Promise<void> {
  if (jobs.length === 0) return;
  await tx
    .deleteFrom('jobs')
    .where(
      'id',
      'in',
      jobs.map((j) => j.id),
    )
    .where('locked_by', '=', worker)
    .execute();
}

/** Turns many claimed jobs into another kind, keeping the claims (see convertJob). */
export async function convertJobs(tx: Executor, jobs: readonly Job[], kind: JobKind): Promise<void> {
  if (jobs.length === 0) return;
  await tx
    .updateTable('jobs')
    .set({ kind })
    .where(
      'id',
      'in',
      jobs.map((j) => j.id),
    )
    .execute();
}
