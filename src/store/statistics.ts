import { sql } from 'kysely';
import type { AccessRequest } from '../domain/request.js';
import type { Executor } from './executor.js';

/**
 * Figures over a window of time for the dashboard, computed by the database over every row (not
 * a page of them): active grants at evenly spaced points, requests by outcome, and how long people
 * took to approve. Each is one query an index serves (migration 0009_statistics).
 */

export interface StatisticsWindow {
  /** The points of the active-grants series run from `until` back towards `since`, `stepMs` apart. */
  readonly since: Date;
  readonly until: Date;
  readonly stepMs: number;
  /** Only this principal's requests and grants; all of them when absent. */
  readonly principalId?: string;
}

export type RequestOutcomes = Record<AccessRequest['status'], number>;

export interface AccessStatistics {
  /** Oldest first; the last point is `until`. */
  readonly activeOverTime: readonly { readonly at: Date; readonly active: number }[];
  /** Requests created in the window, by status. */
  readonly requestsByOutcome: RequestOutcomes;
  /** Median of decided_at - created_at over requests a person approved in the window; null when none. */
  readonly medianTimeToApproveMs: number | null;
  /** How many approvals the median is taken over. */
  readonly approvalsByPeople: number;
}

/** The points of the series: `until`, then one step back at a time while not before `since`. */
export function seriesStart(window: StatisticsWindow): Date {
  const steps = Math.floor((window.until.getTime() - window.since.getTime()) / window.stepMs);
  return new Date(window.until.getTime() - steps * window.stepMs);
}

/**
 * Active grants at each point: activated at or before it and not ended by then (ended_at is when
 * revoking began, or when the target confirmed the removal). A grant still active past its expiry
 * (an overdue revocation) still counts: its access is still there.
 */
async function activeOverTime(tx: Executor, window: StatisticsWindow) {
  const first = seriesStart(window);
  const mine = window.principalId === undefined ? sql`` : sql`AND principal_id = ${window.principalId}`;
  // NB. The inner query keeps only grants overlapping the window (ended_at IS NULL or after its
  // start: grants_ended_idx), so the join compares a bounded set against at most ~100 points.
  const { rows } = await sql<{ at: Date | string; active: string }>`
    SELECT p.at, count(g.id) AS active
    FROM generate_series(${first.toISOString()}::timestamptz, ${window.until.toISOString()}::timestamptz, ${`${window.stepMs} milliseconds`}::interval) AS p(at)
    LEFT JOIN (
      SELECT id, activated_at, ended_at FROM grants
      WHERE (ended_at IS NULL OR ended_at > ${first.toISOString()}::timestamptz)
        AND activated_at <= ${window.until.toISOString()}::timestamptz
        ${mine}
    ) AS g ON g.activated_at <= p.at AND (g.ended_at IS NULL OR g.ended_at > p.at)
    GROUP BY p.at
    ORDER BY p.at`.execute(tx);
  return rows.map((row) => ({ at: new Date(row.at), active: Number(row.active) }));
}

async function requestsByOutcome(tx: Executor, window: StatisticsWindow): Promise<RequestOutcomes> {
  let query = tx
    .selectFrom('requests')
    .select(['status', (eb) => eb.fn.countAll<string>().as('n')])
    .where('created_at', '>=', window.since)
    .where('created_at', '<=', window.until);
  if (window.principalId !== undefined) query = query.where('principal_id', '=', window.principalId);
  const counts: RequestOutcomes = { pending: 0, approved: 0, denied: 0, cancelled: 0, timed_out: 0 };
  for (const row of await query.groupBy('status').execute()) counts[row.status] = Number(row.n);
  return counts;
}

/**
 * Requests that needed a person (their stages are kept; auto-approvals and break-glass have none)
 * and were approved in the window. The predicate is written exactly as requests_approved_by_people_idx's.
 */
async function timeToApprove(tx: Executor, window: StatisticsWindow) {
  const mine = window.principalId === undefined ? sql`` : sql`AND principal_id = ${window.principalId}`;
  const { rows } = await sql<{ median: string | number | null; n: string }>`
    SELECT round(percentile_cont(0.5) WITHIN GROUP (ORDER BY (extract(epoch FROM decided_at - created_at) * 1000)::float8)) AS median,
           count(*) AS n
    FROM requests
    WHERE status = 'approved' AND jsonb_array_length(stages) > 0
      AND decided_at >= ${window.since.toISOString()}::timestamptz AND decided_at <= ${window.until.toISOString()}::timestamptz
      ${mine}`.execute(tx);
  const row = rows[0]!;
  return { medianTimeToApproveMs: row.median === null ? null : Number(row.median), approvalsByPeople: Number(row.n) };
}

export async function accessStatistics(tx: Executor, window: StatisticsWindow): Promise<AccessStatistics> {
  const [series, outcomes, approvals] = await Promise.all([activeOverTime(tx, window), requestsByOutcome(tx, window), timeToApprove(tx, window)]);
  return { activeOverTime: series, requestsByOutcome: outcomes, ...approvals };
}
