import { LIVE_GRANT_STATUSES, type GrantStatus } from './grant.js';

/**
 * Reconciliation as a pure comparison: what a target says exists (one listing) against the grants
 * Lapse holds for it. No I/O and no clock: the caller passes the moment the listing started.
 *
 * Two kinds of drift come out of it:
 * - *standing* access: listed at the target, but no grant covers it (created outside Lapse, or
 *   left over after a grant ended);
 * - *missing* access: an active grant whose access the target does not list.
 */

/** One piece of access the target reported (a connector's CurrentAccess). */
export interface ObservedAccess {
  readonly account: string;
  readonly principalId: string;
  readonly entitlement: string;
  readonly grantId: string | null;
  /**
   * For an entry that names no grant: the access key a grant of its entitlement to its principal
   * would have (the connector's accessKey). Targets where two entitlements give the same access
   * (the same roles) list it under each; the key tells that a grant of either covers both.
   */
  readonly accessKey?: string | null;
}

/** What reconciliation needs to know about a grant. */
export interface KnownGrant {
  readonly id: string;
  readonly target: string;
  readonly principalId: string;
  readonly entitlement: string;
  readonly accessKey: string;
  readonly status: GrantStatus;
  readonly activatedAt: Date | null;
  readonly endedAt: Date | null;
}

export type StandingReason =
  /** No grant is named and none of the principal's live grants gives this entitlement. */
  | 'unmanaged'
  /** The grant it was created for has ended, and no live grant shares its access. */
  | 'left_over'
  /** It names a grant Lapse does not have for this target. */
  | 'unknown_grant';

export interface StandingAccess {
  readonly access: ObservedAccess;
  readonly reason: StandingReason;
  /**
   * Why it must not be removed automatically, or null when it may be: outside the target's
   * configured entitlements, or a live grant of the same entitlement matched nothing listed (the
   * connector may name that principal differently, so this could be its access).
   */
  readonly keep: string | null;
}

export interface MissingAccess {
  readonly grant: KnownGrant;
}

export interface Comparison {
  readonly standing: StandingAccess[];
  readonly missing: MissingAccess[];
  /** Listed entries a grant covers. */
  readonly covered: number;
}

export interface ComparisonInput {
  readonly target: string;
  readonly observed: readonly ObservedAccess[];
  /**
   * The target's grants: every live one, those that ended since the listing started, and every
   * grant an observed entry names (ended or not).
   */
  readonly grants: readonly KnownGrant[];
  /** When the listing started (database clock). */
  readonly listedAt: Date;
  /** The target's configured entitlement names: the only scope remediation may touch. */
  readonly entitlements: ReadonlySet<string>;
}

const LIVE: ReadonlySet<GrantStatus> = new Set(LIVE_GRANT_STATUSES);

/**
 * A grant accounts for access listed at `listedAt` if it is live, or ended after the listing
 * started (the listing may have seen its access just before the revoke landed).
 */
function accountsFor(grant: KnownGrant, listedAt: Date): boolean {
  return LIVE.has(grant.status) || (grant.endedAt !== null && grant.endedAt.getTime() >= listedAt.getTime());
}

const principalKey = (entitlement: string, principal: string) => `${entitlement}\u0000${principal}`;

function push<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}

/** Grants looked up by id, by access key and by (entitlement, principal): one pass, however long the listing. */
class GrantIndex {
  readonly byId = new Map<string, KnownGrant>();
  private readonly byKey = new Map<string, KnownGrant[]>();
  private readonly byPrincipal = new Map<string, KnownGrant[]>();

  /** Indexes every grant by id; only `included` ones can cover or match. */
  constructor(grants: readonly KnownGrant[], included: (grant: KnownGrant) => boolean) {
    for (const grant of grants) {
      this.byId.set(grant.id, grant);
      if (!included(grant)) continue;
      push(this.byKey, grant.accessKey, grant);
      push(this.byPrincipal, principalKey(grant.entitlement, grant.principalId), grant);
    }
  }

  /**
   * The included grants whose access this listed entry is. An entry that names its grant is that
   * grant's access, shared by every grant with the same access key (reference-counted access
   * outlives the grant that created it); an entry that names none is the access of the grants of
   * the same entitlement to the principal it names (or to its account, when the target knows no
   * principal), and of the grants with the access key such a grant would have.
   */
  holders(access: ObservedAccess): KnownGrant[] {
    if (access.grantId !== null) {
      const named = this.byId.get(access.grantId);
      return named ? (this.byKey.get(named.accessKey) ?? []) : [];
    }
    const holders = [...(this.byPrincipal.get(principalKey(access.entitlement, access.principalId)) ?? [])];
    if (access.account !== access.principalId) holders.push(...(this.byPrincipal.get(principalKey(access.entitlement, access.account)) ?? []));
    if (access.accessKey) holders.push(...(this.byKey.get(access.accessKey) ?? []));
    return holders;
  }
}

/** The grant that covers a listed entry (see GrantIndex.holders), or null. */
export function coveringGrant(access: ObservedAccess, grants: readonly KnownGrant[], listedAt: Date): KnownGrant | null {
  return new GrantIndex(grants, (g) => accountsFor(g, listedAt)).holders(access)[0] ?? null;
}

export function compareAccess(input: ComparisonInput): Comparison {
  const grants = input.grants.filter((g) => g.target === input.target);
  const covering = new GrantIndex(grants, (g) => accountsFor(g, input.listedAt));
  const live = new GrantIndex(grants, (g) => LIVE.has(g.status));
  const standingAccess: ObservedAccess[] = [];
  const matched = new Set<string>();
  let covered = 0;
  for (const access of input.observed) {
    if (covering.holders(access).length > 0) covered++;
    else standingAccess.push(access);
    for (const grant of live.holders(access)) matched.add(grant.id);
  }

  // NB. A live grant that matches nothing listed is either missing access, or access the
  // connector reports under another name. Until that is told apart, standing access of the same
  // entitlement is reported but never removed automatically.
  const unmatched = grants.filter((g) => LIVE.has(g.status) && !matched.has(g.id));
  const unsureEntitlements = new Set(unmatched.map((g) => g.entitlement));

  const standing = standingAccess.map((access): StandingAccess => {
    const named = access.grantId === null ? undefined : covering.byId.get(access.grantId);
    const reason: StandingReason = access.grantId === null ? 'unmanaged' : named ? 'left_over' : 'unknown_grant';
    let keep: string | null = null;
    if (!input.entitlements.has(access.entitlement)) keep = 'the entitlement is not configured for this target';
    else if (unsureEntitlements.has(access.entitlement)) keep = 'a live grant of this entitlement matches no listed access';
    return { access, reason, keep };
  });

  // Only grants active before the listing started can be missing: one activated later may have
  // been provisioned after the target answered.
  const missing = unmatched
    .filter((g) => g.status === 'active' && g.activatedAt !== null && g.activatedAt.getTime() <= input.listedAt.getTime())
    .map((grant) => ({ grant }));
  return { standing, missing, covered };
}
