import { LapseError } from './errors.js';
import { inSubjectSet, sharePerson, type Principal } from './principal.js';
import type { AccessRequest } from './request.js';

export const REVIEW_DECISIONS = ['approve', 'deny'] as const;
export type ReviewDecision = (typeof REVIEW_DECISIONS)[number];

/** One approver's decision on a request, at a stage. */
export interface Review {
  readonly id: string;
  readonly requestId: string;
  readonly reviewer: Principal;
  readonly decision: ReviewDecision;
  readonly comment: string;
  readonly stage: number;
  readonly at: Date;
}

export interface ReviewOutcome {
  readonly request: AccessRequest;
  /** 'recorded': counted, more approvals needed; 'advanced': a stage completed, next stage opened. */
  readonly effect: 'recorded' | 'advanced' | 'approved' | 'denied';
}

/**
 * Applies one review to a request: the whole approval logic, pure, in one place.
 * `previous` are the reviews already recorded for this request.
 *
 * Rules: the requester never reviews their own request (and so never counts toward quorum), not
 * even through a token one of them issued for the other (see `peopleBehind`); only
 * approvers of the *current* stage may act; one person counts once per request, so someone in two
 * stages' groups cannot satisfy both alone (separation of duties); any eligible deny ends it.
 */
export function applyReview(request: AccessRequest, previous: readonly Review[], review: Review): ReviewOutcome {
  const own = sharePerson(review.reviewer, request.principal);
  if (own !== undefined) {
    const message =
      review.reviewer.id === request.principal.id
        ? `${review.reviewer.id} cannot review their own request ${request.id}`
        : `${own} cannot review their own request ${request.id}: ${review.reviewer.id === own ? `it was made through a token ${own} issued` : `${review.reviewer.id} acts through a token ${own} issued`}`;
    throw new LapseError('self_approval', message, { where: request.id, hint: 'Ask one of the approvers named on the request.' });
  }
  if (request.status !== 'pending') {
    throw new LapseError('invalid_transition', `request ${request.id} is already ${request.status}`, {
      where: request.id,
      hint: 'Reviews only apply to pending requests.',
    });
  }
  const stage = request.stages[request.currentStage];
  if (!stage || review.stage !== request.currentStage) {
    throw new LapseError('invalid_transition', `request ${request.id} is not collecting reviews for stage ${review.stage}`, {
      where: request.id,
    });
  }
  if (!inSubjectSet(review.reviewer, stage.approvers)) {
    throw new LapseError('not_an_approver', `${review.reviewer.id} is not an approver for stage "${stage.name}" of request ${request.id}`, {
      where: request.id,
      hint: `Approvers for this stage: ${describeApprovers(stage.approvers)}.`,
    });
  }
  if (previous.some((earlier) => sharePerson(earlier.reviewer, review.reviewer) !== undefined)) {
    throw new LapseError('conflict', `${review.reviewer.id} has already reviewed request ${request.id}`, {
      where: request.id,
      hint: 'Each person counts once per request; another approver must act.',
    });
  }

  if (review.decision === 'deny') {
    return { request: { ...request, status: 'denied', decidedAt: review.at, pendingUntil: null }, effect: 'denied' };
  }

  const approvals = new Set(
    [...previous, review]
      .filter((r) => r.decision === 'approve' && r.stage === request.currentStage && r.reviewer.id !== request.principal.id)
      .map((r) => r.reviewer.id),
  );
  if (approvals.size < stage.quorum) return { request, effect: 'recorded' };
  if (request.currentStage + 1 < request.stages.length) {
    return { request: { ...request, currentStage: request.currentStage + 1 }, effect: 'advanced' };
  }
  return { request: { ...request, status: 'approved', decidedAt: review.at, pendingUntil: null }, effect: 'approved' };
}

/** Whether `who` may review the request now: used to build approval inboxes. */
export function canReview(request: AccessRequest, previous: readonly Review[], who: Principal): boolean {
  const stage = request.stages[request.currentStage];
  return (
    request.status === 'pending' &&
    stage !== undefined &&
    sharePerson(who, request.principal) === undefined &&
    inSubjectSet(who, stage.approvers) &&
    !previous.some((r) => sharePerson(r.reviewer, who) !== undefined)
  );
}

function describeApprovers(set: { users: readonly string[]; groups: readonly string[] }): string {
  const names = [...set.users.map((u) => `user ${u}`), ...set.groups.map((g) => `group ${g}`)];
  return names.length > 0 ? names.join(', ') : 'nobody';
}
