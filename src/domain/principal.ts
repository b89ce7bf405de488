/** A user or service identity, with the groups it belongs to at the moment it acts. */
export interface Principal {
  readonly id: string;
  readonly kind: 'user' | 'service';
  readonly groups: readonly string[];
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
