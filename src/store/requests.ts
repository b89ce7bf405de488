import type { Selectable } from 'kysely';
import type { AccessRequest } from '../domain/request.js';
import type { Review } from '../domain/review.js';
import type { Executor } from './executor.js';
import type { RequestsTable, ReviewsTable } from './schema.js';

export interface ClientContext {
  readonly ip?: string;
  readonly userAgent?: string;
  readonly mfaAt?: string;
}

export function toRequest(row: Selectable<RequestsTable>): AccessRequest {
  return {
    id: row.id,
    kind: row.kind,
    principal: row.principal,
    target: row.target,
    entitlement: row.entitlement,
    durationMs: Number(row.duration_ms),
    reason: row.reason,
    ticket: row.ticket,
    parameters: row.parameters,
    status: row.status,
    policy: row.policy,
    policyVersion: row.policy_version,
    reasons: row.reasons,
    stages: row.stages,
    currentStage: row.current_stage,
    grantId: row.grant_id,
    createdAt: new Date(row.created_at),
    decidedAt: row.decided_at ? new Date(row.decided_at) : null,
    pendingUntil: row.pending_until ? new Date(row.pending_until) : null,
  };
}

export async function insertRequest(tx: Executor, request: AccessRequest, client: ClientContext): Promise<void> {
  await tx
    .insertInto('requests')
    .values({
      id: request.id,
      kind: request.kind,
      principal_id: request.principal.id,
      principal: JSON.stringify(request.principal),
      target: request.target,
      entitlement: request.entitlement,
      duration_ms: request.durationMs,
      reason: request.reason,
      ticket: request.ticket,
      parameters: JSON.stringify(request.parameters),
      status: request.status,
      policy: request.policy,
      policy_version: request.policyVersion,
      reasons: JSON.stringify(request.reasons),
      stages: JSON.stringify(request.stages),
      current_stage: request.currentStage,
      grant_id: request.grantId,
      client: JSON.stringify(client),
      created_at: request.createdAt,
      decided_at: request.decidedAt,
      pending_until: request.pendingUntil,
      reviewed_at: null,
      reviewed_by: null,
    })
    .execute();
}

export async function getRequest(tx: Executor, id: string, options: { forUpdate?: boolean } = {}): Promise<AccessRequest | undefined> {
  let query = tx.selectFrom('requests').selectAll().where('id', '=', id);
  if (options.forUpdate) query = query.forUpdate();
  const row = await query.executeTakeFirst();
  return row ? toRequest(row) : undefined;
}

/** Writes the mutable part of a request after a checked domain transition. */
export async function updateRequest(tx: Executor, request: AccessRequest): Promise<void> {
  await tx
    .updateTable('requests')
    .set({
      status: request.status,
      current_stage: request.currentStage,
      decided_at: request.decidedAt,
      pending_until: request.pendingUntil,
      grant_id: request.grantId,
    })
    .where('id', '=', request.id)
    .execute();
}

export async function markBreakGlassReviewed(tx: Executor, id: string, by: string, at: Date): Promise<void> {
  await tx.updateTable('requests').set({ reviewed_at: at, reviewed_by: by }).where('id', '=', id).execute();
}

function toReview(row: Selectable<ReviewsTable>): Review {
  return {
    id: row.id,
    requestId: row.request_id,
    reviewer: row.reviewer,
    decision: row.decision,
    comment: row.comment,
    stage: row.stage,
    at: new Date(row.created_at),
  };
}

/** The reviews of many requests in one query (an approvals inbox), by request id. */
export async function listReviewsOf(tx: Executor, requestIds: readonly string[]): Promise<Map<string, Review[]>> {
  const byRequest = new Map<string, Review[]>(requestIds.map((id) => [id, []]));
  if (requestIds.length === 0) return byRequest;
  const rows = await tx
    .selectFrom('reviews')
    .selectAll()
    .where('request_id', 'in', [...requestIds])
    .orderBy('created_at')
    .orderBy('id')
    .execute();
  for (const row of rows) byRequest.get(row.request_id)?.push(toReview(row));
  return byRequest;
}

export async function listReviews(tx: Executor, requestId: string): Promise<Review[]> {
  const rows = await tx.selectFrom('reviews').selectAll().where('request_id', '=', requestId).orderBy('created_at').orderBy('id').execute();
  return rows.map(toReview);
}

export async function insertReview(tx: Executor, review: Review): Promise<void> {
  await tx
    .insertInto('reviews')
    .values({
      id: review.id,
      request_id: review.requestId,
      reviewer_id: review.reviewer.id,
      reviewer: JSON.stringify(review.reviewer),
      decision: review.decision,
      comment: review.comment,
      stage: review.stage,
      created_at: review.at,
    })
    .execute();
}

export interface RequestFilter {
  readonly principalId?: string;
  readonly status?: AccessRequest['status'];
  readonly target?: string;
  readonly kind?: AccessRequest['kind'];
  /** Break-glass requests not yet reviewed after the fact (true), or already reviewed (false). */
  readonly awaitingReview?: boolean;
  /** Continues a previous page: ids are time-ordered, so "older than this id" is stable under inserts. */
  readonly beforeId?: string;
  readonly limit?: number;
}

/** Newest first (by id, which is time-ordered). */
export async function listRequests(tx: Executor, filter: RequestFilter = {}): Promise<AccessRequest[]> {
  let query = tx.selectFrom('requests').selectAll();
  if (filter.principalId) query = query.where('principal_id', '=', filter.principalId);
  if (filter.status) query = query.where('status', '=', filter.status);
  if (filter.target) query = query.where('target', '=', filter.target);
  if (filter.kind) query = query.where('kind', '=', filter.kind);
  if (filter.awaitingReview !== undefined) query = query.where('kind', '=', 'break_glass').where('reviewed_at', filter.awaitingReview ? 'is' : 'is not', null);
  if (filter.beforeId) query = query.where('id', '<', filter.beforeId);
  const rows = await query
    .orderBy('id', 'desc')
    .limit(Math.min(filter.limit ?? 100, 1000))
    .execute();
  return rows.map(toRequest);
}

/** What an approver sees of a requester's past: counts over a window and the latest few requests. */
export interface RequesterHistory {
  readonly counts: Readonly<Record<AccessRequest['status'], number>> & { readonly breakGlass: number; readonly revokedByAdmin: number };
  readonly recent: readonly {
    readonly id: string;
    readonly kind: AccessRequest['kind'];
    readonly target: string;
    readonly entitlement: string;
    readonly status: AccessRequest['status'];
    readonly durationMs: number;
    readonly createdAt: Date;
    readonly grantEndReason: string | null;
  }[];
}

/**
 * A requester's requests since `since`: counts by outcome, break-glass uses, grants an admin
 * revoked, and the `limit` most recent. Two indexed queries on (principal_id, created_at).
 */
export async function requesterHistory(tx: Executor, principalId: string, options: { since: Date; limit: number }): Promise<RequesterHistory> {
  const base = tx
    .selectFrom('requests')
    .leftJoin('grants', 'grants.id', 'requests.grant_id')
    .where('requests.principal_id', '=', principalId)
    .where('requests.created_at', '>=', options.since);
  const [grouped, recent] = await Promise.all([
    base
      .select((eb) => [
        'requests.status as status',
        eb.fn.countAll<string>().as('n'),
        eb.fn.count<string>(eb.case().when('requests.kind', '=', 'break_glass').then(1).end()).as('break_glass'),
        eb.fn.count<string>(eb.case().when('grants.end_reason', '=', 'revoked').then(1).end()).as('revoked'),
      ])
      .groupBy('requests.status')
      .execute(),
    base
      .select([
        'requests.id',
        'requests.kind',
        'requests.target',
        'requests.entitlement',
        'requests.status',
        'requests.duration_ms',
        'requests.created_at',
        'grants.end_reason',
      ])
      .orderBy('requests.created_at', 'desc')
      .limit(options.limit)
      .execute(),
  ]);
  const counts = { pending: 0, approved: 0, denied: 0, cancelled: 0, timed_out: 0, breakGlass: 0, revokedByAdmin: 0 };
  for (const row of grouped) {
    counts[row.status] = Number(row.n);
    counts.breakGlass += Number(row.break_glass);
    counts.revokedByAdmin += Number(row.revoked);
  }
  return {
    counts,
    recent: recent.map((row) => ({
      id: row.id,
      kind: row.kind,
      target: row.target,
      entitlement: row.entitlement,
      status: row.status,
      durationMs: Number(row.duration_ms),
      createdAt: new Date(row.created_at),
      grantEndReason: row.end_reason,
    })),
  };
}

/** Who reviewed a break-glass request and when (both null while unreviewed). Throws if there is no such request. */
export async function getBreakGlassReview(tx: Executor, id: string): Promise<{ reviewedAt: Date | null; reviewedBy: string | null }> {
  const row = await tx.selectFrom('requests').select(['reviewed_at', 'reviewed_by']).where('id', '=', id).executeTakeFirstOrThrow();
  return { reviewedAt: row.reviewed_at === null ? null : new Date(row.reviewed_at), reviewedBy: row.reviewed_by };
}

/** Requests by id, in one query (the notification outbox reads a batch's requests at once). */
export async function getRequestsByIds(tx: Executor, ids: readonly string[]): Promise<Map<string, AccessRequest>> {
  if (ids.length === 0) return new Map();
  const rows = await tx
    .selectFrom('requests')
    .selectAll()
    .where('id', 'in', [...new Set(ids)])
    .execute();
  return new Map(rows.map((row) => [row.id, toRequest(row)]));
}
