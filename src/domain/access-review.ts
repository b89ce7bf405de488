import { z } from 'zod';
import { LapseError } from './errors.js';
import { boundedText } from './text.js';
import { matchesEntitlementPattern } from './policy/definition.js';
import { mayDecideReviewItem } from './authorization.js';
import { peopleBehind, type Principal, type SubjectSet } from './principal.js';

/**
 * Access reviews (docs/reviews.md): campaigns that ask accountable people, on a schedule, whether
 * each person should keep each privileged access. Pure rules here: who reviews an item, whether a
 * decision may be taken, and what the deadline's default makes of an unanswered item.
 */

export const REVIEW_ITEM_KINDS = ['eligible', 'used', 'standing'] as const;
export type ReviewItemKind = (typeof REVIEW_ITEM_KINDS)[number];
export const ACCESS_REVIEW_DECISIONS = ['keep', 'remove', 'unsure'] as const;
export type ReviewDecisionValue = (typeof ACCESS_REVIEW_DECISIONS)[number];
/** What an unanswered item gets at the deadline; `flag` records it as unsure for an admin to follow up. */
export const REVIEW_DEFAULTS = ['keep', 'remove', 'flag'] as const;
export type ReviewDefault = (typeof REVIEW_DEFAULTS)[number];
export type ReviewOutcome = 'pending' | 'kept' | 'flagged' | 'removed' | 'remove_failed' | 'change_proposed' | 'change_applied';

/** An entitlement's owners: who reviews access to entitlements matching `pattern`. */
export interface ReviewOwners extends SubjectSet {
  readonly pattern: string;
}

/** A campaign's rules, copied into it when it opens (durations in ms). */
export interface ReviewCampaignSettings {
  readonly name: string;
  readonly description: string;
  readonly scope: {
    /** Entitlement patterns (`target/*` for a whole target); empty: every entitlement. */
    readonly entitlements: readonly string[];
    /** Policy names whose eligible people are reviewed; empty: every policy. */
    readonly policies: readonly string[];
    /** Only people in these groups (eligible and used items); empty: everyone. */
    readonly groups: readonly string[];
  };
  /** Opens again this long after the last one opened; null: once (created in the API). */
  readonly everyMs: number | null;
  /** How far back usage is counted. */
  readonly periodMs: number;
  /** How long reviewers have after it opens. */
  readonly durationMs: number;
  /** Reviewers with open items are reminded this often until the deadline; null: never. */
  readonly remindEveryMs: number | null;
  readonly reviewers: { readonly owners: readonly ReviewOwners[]; readonly fallback: SubjectSet };
  readonly whenUnanswered: ReviewDefault;
  /** Entitlement patterns whose "keep" needs a justification. */
  readonly highRisk: readonly string[];
}

/** Justifications for keeping high-risk access are at least this long. */
export const MIN_KEEP_JUSTIFICATION = 10;

/** The reviewers of access to target/entitlement: its owners, or the fallback when it has none. */
export function reviewersOf(settings: ReviewCampaignSettings, target: string, entitlement: string): SubjectSet {
  const owners = settings.reviewers.owners.filter((o) => matchesEntitlementPattern(o.pattern, target, entitlement));
  if (owners.length === 0) return { users: [...settings.reviewers.fallback.users], groups: [...settings.reviewers.fallback.groups] };
  return {
    users: [...new Set(owners.flatMap((o) => o.users))].sort(),
    groups: [...new Set(owners.flatMap((o) => o.groups))].sort(),
  };
}

export function inReviewScope(settings: ReviewCampaignSettings, target: string, entitlement: string): boolean {
  const patterns = settings.scope.entitlements;
  return patterns.length === 0 || patterns.some((p) => matchesEntitlementPattern(p, target, entitlement));
}

export function isHighRisk(settings: ReviewCampaignSettings, target: string, entitlement: string): boolean {
  return settings.highRisk.some((p) => matchesEntitlementPattern(p, target, entitlement));
}

/** The part of an item a decision rule reads. */
export interface ReviewItemFacts {
  readonly id: string;
  readonly principalId: string;
  readonly highRisk: boolean;
  readonly reviewers: SubjectSet;
  readonly decision: ReviewDecisionValue | null;
}

/**
 * Refuses a decision the reviewer may not take: on their own access (nor through a token someone
 * issued for them), when they are not a reviewer of the item, when it was decided already, or a
 * "keep" of high-risk access without a justification. Throws; returns nothing when allowed.
 */
export function checkReviewDecision(
  item: ReviewItemFacts,
  reviewer: Pick<Principal, 'id' | 'groups' | 'via'>,
  decision: ReviewDecisionValue,
  justification: string,
): void {
  if (peopleBehind(reviewer).includes(item.principalId)) {
    throw new LapseError('self_approval', `${reviewer.id} cannot review their own access (item ${item.id})`, {
      where: item.id,
      hint: 'Another reviewer of this entitlement decides it; nothing was recorded.',
    });
  }
  if (!mayDecideReviewItem(reviewer, item)) {
    throw new LapseError('not_found', `there is no review item ${item.id} for you to decide`, {
      where: item.id,
      hint: 'List your queue with `lapse review ls`; nothing was recorded.',
    });
  }
  if (item.decision !== null) {
    throw new LapseError('invalid_transition', `review item ${item.id} was already decided (${item.decision})`, {
      where: item.id,
      hint: 'A decision is final; nothing was recorded.',
    });
  }
  if (decision === 'keep' && item.highRisk && justification.trim().length < MIN_KEEP_JUSTIFICATION) {
    throw new LapseError(
      'validation_failed',
      `keeping high-risk access (item ${item.id}) needs a justification of at least ${MIN_KEEP_JUSTIFICATION} characters`,
      {
        where: 'justification',
        hint: 'Say why this person still needs this access; nothing was recorded.',
      },
    );
  }
}

/** The decision the deadline records for an unanswered item. */
export function defaultDecision(whenUnanswered: ReviewDefault): ReviewDecisionValue {
  return whenUnanswered === 'flag' ? 'unsure' : whenUnanswered;
}

/**
 * What a decision makes of an item before any target is called: kept, flagged, a proposed config
 * change (eligible and used items: Lapse never edits lapse.yaml), or pending removal at the target
 * (standing access, removed through the connector after commit).
 */
export function outcomeOf(kind: ReviewItemKind, decision: ReviewDecisionValue): ReviewOutcome {
  if (decision === 'keep') return 'kept';
  if (decision === 'unsure') return 'flagged';
  return kind === 'standing' ? 'pending' : 'change_proposed';
}

/**
 * The config change a "remove" on eligible or used access proposes: the admin applies it to the
 * file (or to the group at the identity provider).
 */
export function proposedChange(
  principalId: string,
  eligibility: { readonly policy: string | null; readonly viaUser: boolean; readonly viaGroups: readonly string[] },
): { readonly policy: string | null; readonly change: string } {
  const { policy, viaUser, viaGroups } = eligibility;
  if (policy === null) return { policy, change: `${principalId} is not eligible under any policy now: no change needed beyond confirming it` };
  const parts: string[] = [];
  if (viaUser) parts.push(`remove "${principalId}" from policies[name=${policy}].subjects.users`);
  if (viaGroups.length > 0)
    parts.push(
      `take ${principalId} out of group(s) ${viaGroups.join(', ')} at the identity provider, or remove the group(s) from policies[name=${policy}].subjects.groups`,
    );
  return { policy, change: parts.join('; and ') || `remove ${principalId} from policy ${policy}` };
}

/** Review item ids as the API and CLI send them. */
export const reviewItemId = z.string().regex(/^rvi_[0-9a-z]{1,40}$/, 'a review item id looks like rvi_…');
export const reviewCampaignId = z.string().regex(/^rvc_[0-9a-z]{1,40}$/, 'a review campaign id looks like rvc_…');

/** One decision on up to 500 items with one justification (bulk decide), as the API and CLI send it. */
export const reviewDecisionInput = z
  .object({
    items: z.array(reviewItemId).min(1).max(500),
    decision: z.enum(ACCESS_REVIEW_DECISIONS, { message: 'decision is keep, remove or unsure' }),
    justification: boundedText(2000).default(''),
  })
  .strict();
