import type { Grant } from './grant.js';
import { inSubjectSet, type Principal, type SubjectSet } from './principal.js';
import type { AccessRequest } from './request.js';

/**
 * Who may do what to which object: the one table of Lapse's authorization rules, pure (no I/O),
 * so the engine's write checks and the API's read checks ask the same questions. The only place
 * that knows what the admin and auditor roles allow. Refusals are audited by the callers
 * (src/api/authorization.ts for the API, the engine's use-cases for writes); docs/authorization.md
 * is the table in prose.
 */

/** The configured roles (`roles` in lapse.yaml). */
export interface Roles {
  readonly admins: SubjectSet;
  readonly auditors: SubjectSet;
}

/**
 * A role a route or action may require on top of a credential's scope: `admin` (roles.admins), or
 * `reader` (admins and auditors: may read every request, grant, finding and audit event).
 */
export type Role = 'admin' | 'reader';

type Who = Pick<Principal, 'id' | 'groups'>;

export function isAdmin(roles: Pick<Roles, 'admins'>, who: Who): boolean {
  return inSubjectSet(who, roles.admins);
}

export function isAuditor(roles: Pick<Roles, 'auditors'>, who: Who): boolean {
  return inSubjectSet(who, roles.auditors);
}

/** Admins and auditors: may read every request, grant and audit event. */
export function readsEverything(roles: Roles, who: Who): boolean {
  return isAdmin(roles, who) || isAuditor(roles, who);
}

export function holdsRole(roles: Roles, who: Who, role: Role): boolean {
  return role === 'admin' ? isAdmin(roles, who) : readsEverything(roles, who);
}

/** Named in an approval stage of the request (whether they may review now is `canReview`'s question). */
export function isApproverOf(request: Pick<AccessRequest, 'stages'>, who: Who): boolean {
  return request.stages.some((stage) => inSubjectSet(who, stage.approvers));
}

/** Requesters see their own requests; approvers those whose stages name them; admins and auditors all. */
export function canSeeRequest(roles: Roles, who: Who, request: Pick<AccessRequest, 'principal' | 'stages'>): boolean {
  return request.principal.id === who.id || readsEverything(roles, who) || isApproverOf(request, who);
}

/** Holders see their own grants; admins and auditors all. */
export function canSeeGrant(roles: Roles, who: Who, grant: Pick<Grant, 'principalId'>): boolean {
  return grant.principalId === who.id || readsEverything(roles, who);
}

/** Only the holder fetches, releases or extends a grant (admins revoke instead). */
export function holdsGrant(who: Who, grant: Pick<Grant, 'principalId'>): boolean {
  return grant.principalId === who.id;
}

/** Admins take access away (revoke, force-close). */
export function mayEndAnyGrant(roles: Roles, who: Who): boolean {
  return isAdmin(roles, who);
}

/** Admins put accounts into the vault (onboarding hands Lapse a live privileged password). */
export function mayManageVault(roles: Roles, who: Who): boolean {
  return isAdmin(roles, who);
}

/** Admins and auditors review break-glass use after the fact (never their own: the engine checks that). */
export function mayReviewBreakGlass(roles: Roles, who: Who): boolean {
  return readsEverything(roles, who);
}

/** Anyone may check their own access; admins and auditors anyone's. */
export function mayCheckAccessOf(roles: Roles, who: Who, principalId: string): boolean {
  return principalId === who.id || readsEverything(roles, who);
}

/** Admins open and close access-review campaigns (docs/reviews.md). */
export function mayRunReviews(roles: Roles, who: Who): boolean {
  return isAdmin(roles, who);
}

/** Admins and auditors read every campaign, its items and the compliance reports. */
export function mayReadReviews(roles: Roles, who: Who): boolean {
  return readsEverything(roles, who);
}

/** A review item's reviewers decide it, never the person whose access it is (the engine checks decisions with this). */
export function mayDecideReviewItem(who: Who, item: { readonly principalId: string; readonly reviewers: SubjectSet }): boolean {
  return item.principalId !== who.id && inSubjectSet(who, item.reviewers);
}
/** Admins acknowledge and resolve anomaly alerts (admins and auditors read them: `reader`). */
export function mayManageAlerts(roles: Roles, who: Who): boolean {
  return isAdmin(roles, who);
}
