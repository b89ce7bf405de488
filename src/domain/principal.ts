/** A user or service identity, with the groups it belongs to at the moment it acts. */
export interface Principal {
  readonly id: string;
  readonly kind: 'user' | 'service';
  readonly groups: readonly string[];
  /** Set when it acts through an API token: which token, and who issued it. */
  readonly via?: TokenUse;
}

/**
 * An action through an API token. The issuer is the owner for their own tokens, an admin for a
 * service identity's, or `cli:<os user>` for the offline `lapse admin token create`.
 */
export interface TokenUse {
  readonly tokenId: string;
  readonly issuedBy: string;
}

/** Users and groups named in config: policy subjects, approvers, admins, auditors. */
export interface SubjectSet {
  readonly users: readonly string[];
  readonly groups: readonly string[];
}

export function inSubjectSet(principal: Pick<Principal, 'id' | 'groups'>, set: SubjectSet): boolean {
  if (set.users.includes(principal.id)) return true;
  return principal.groups.some((group) => set.groups.includes(group));
}

/**
 * The people behind an action: the principal and, through a token someone else issued (an admin's
 * token for a service identity), that issuer too. Four-eyes rules count both.
 */
export function peopleBehind(principal: Pick<Principal, 'id' | 'via'>): string[] {
  const issuer = principal.via?.issuedBy;
  return issuer !== undefined && issuer !== principal.id ? [principal.id, issuer] : [principal.id];
}

/** Whether two actions share a person behind them (the same principal, or one issued the other's token). */
export function sharePerson(a: Pick<Principal, 'id' | 'via'>, b: Pick<Principal, 'id' | 'via'>): string | undefined {
  const theirs = new Set(peopleBehind(b));
  return peopleBehind(a).find((person) => theirs.has(person));
}

/** Audit data naming the token an action came through and its issuer (nothing for a session). */
export function viaData(principal: Pick<Principal, 'via'>): { via?: TokenUse } {
  return principal.via ? { via: { tokenId: principal.via.tokenId, issuedBy: principal.via.issuedBy } } : {};
}

/** What a person's or service identity's name may be (lower-case, so names compare as people expect): 1 to 128 characters. */
export const PERSON_NAME_PATTERN = /^[a-z0-9][a-z0-9_.@-]{0,127}$/;
