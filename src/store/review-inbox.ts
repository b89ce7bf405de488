import { sql } from 'kysely';
import type { AccessRequest } from '../domain/request.js';
import type { Principal } from '../domain/principal.js';
import type { Executor } from './executor.js';
import { toRequest } from './requests.js';

export interface ReviewInboxFilter {
  readonly target?: string;
  readonly kind?: AccessRequest['kind'];
  /** Continues a previous page (ids are time-ordered). */
  readonly beforeId?: string;
  readonly limit: number;
}

/**
 * Pending requests whose current stage names `reviewer` (as a user or by a group), not their own
 * and not yet reviewed by them: an approvals inbox, newest first, paged in SQL. NB. The domain's
 * `canReview` stays the rule (it also counts the person behind a token); this is its index.
 */
export async function listReviewInbox(tx: Executor, reviewer: Pick<Principal, 'id' | 'groups'>, filter: ReviewInboxFilter): Promise<AccessRequest[]> {
  const approvers = sql`(requests.stages -> requests.current_stage -> 'approvers')`;
  let query = tx
    .selectFrom('requests')
    .selectAll()
    .where('status', '=', 'pending')
    .where('principal_id', '<>', reviewer.id)
    .where(
      reviewer.groups.length > 0
        ? sql<boolean>`(jsonb_exists(${approvers} -> 'users', ${reviewer.id}) OR jsonb_exists_any(${approvers} -> 'groups', ${sql.val([...reviewer.groups])}::text[]))`
        : sql<boolean>`jsonb_exists(${approvers} -> 'users', ${reviewer.id})`,
    )
    .where(({ not, exists, selectFrom }) =>
      not(exists(selectFrom('reviews').select('reviews.id').whereRef('reviews.request_id', '=', 'requests.id').where('reviews.reviewer_id', '=', reviewer.id))),
    );
  if (filter.target) query = query.where('target', '=', filter.target);
  if (filter.kind) query = query.where('kind', '=', filter.kind);
  if (filter.beforeId) query = query.where('id', '<', filter.beforeId);
  const rows = await query.orderBy('id', 'desc').limit(Math.min(filter.limit, 1000)).execute();
  return rows.map(toRequest);
}
