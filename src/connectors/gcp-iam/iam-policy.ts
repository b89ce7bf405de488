/**
 * Lapse's bindings in an IAM policy (version 3), as pure functions over the bindings list. One
 * conditional binding per grant: its condition title `lapse:<grant id>` names the grant, its
 * description the target and entitlement, and its expression `request.time < timestamp("<end>")`
 * is the backstop that ends the access at the grant's end even if Lapse's revoke never comes.
 */
export interface Condition {
  title?: string | null;
  description?: string | null;
  expression?: string | null;
}

export interface Binding {
  role?: string | null;
  members?: string[] | null;
  condition?: Condition | null;
}

export interface Policy {
  version?: number | null;
  etag?: string | null;
  bindings?: Binding[] | null;
}

/** IAM counts every occurrence of a principal in the policy's bindings against this limit. */
export const MAX_PRINCIPALS = 1_500;
const TITLE_PREFIX = 'lapse:';
const GRANT_ID = /^grt_[0-9a-z]{1,64}$/;
const EXPRESSION = /^request\.time < timestamp\("(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)"\)$/;
const DESCRIPTION = /^Lapse grant on target ([a-z0-9_.-]{1,63}), entitlement ([a-z0-9_.-]{1,63})$/;

export interface GrantBindingSpec {
  readonly grantId: string;
  readonly target: string;
  readonly entitlement: string;
  readonly role: string;
  readonly member: string;
  readonly notAfter: Date;
}

export function conditionTitle(grantId: string): string {
  return `${TITLE_PREFIX}${grantId}`;
}

/** `request.time < timestamp("…")` at the whole second at or before `notAfter`: the backstop never outlives the grant. */
export function expiryExpression(notAfter: Date): string {
  const seconds = Math.floor(notAfter.getTime() / 1000) * 1000;
  return `request.time < timestamp("${new Date(seconds).toISOString().replace('.000Z', 'Z')}")`;
}

export function grantBinding(spec: GrantBindingSpec): Binding {
  return {
    role: spec.role,
    members: [spec.member],
    condition: {
      title: conditionTitle(spec.grantId),
      description: `Lapse grant on target ${spec.target}, entitlement ${spec.entitlement}`,
      expression: expiryExpression(spec.notAfter),
    },
  };
}

/** The grant a binding belongs to, when it is one of Lapse's. */
export function grantIdOf(binding: Binding): string | null {
  const title = binding.condition?.title;
  if (!title?.startsWith(TITLE_PREFIX)) return null;
  const id = title.slice(TITLE_PREFIX.length);
  return GRANT_ID.test(id) ? id : null;
}

/** Target and entitlement a Lapse binding was made for (from its description), or null if it was edited. */
export function origin(binding: Binding): { target: string; entitlement: string } | null {
  const match = DESCRIPTION.exec(binding.condition?.description ?? '');
  return match ? { target: match[1]!, entitlement: match[2]! } : null;
}

/** When a Lapse binding's condition stops granting, or null if its expression is not Lapse's form. */
export function bindingEnd(binding: Binding): Date | null {
  const match = EXPRESSION.exec(binding.condition?.expression ?? '');
  return match ? new Date(match[1]!) : null;
}

export function principalCount(bindings: readonly Binding[]): number {
  return bindings.reduce((sum, b) => sum + (b.members?.length ?? 0), 0);
}

/** Adds the grant's binding, or makes the one already there exactly it (a repeated provision). */
export function upsertGrantBinding(bindings: Binding[], binding: Binding): void {
  const grantId = grantIdOf(binding);
  const index = bindings.findIndex((b) => grantIdOf(b) === grantId);
  if (index < 0) bindings.push(binding);
  else bindings[index] = binding;
}

/** Removes every binding of the grant; returns how many there were. */
export function removeGrantBindings(bindings: Binding[], grantId: string): number {
  return removeWhere(bindings, (b) => grantIdOf(b) === grantId);
}

/** Moves the grant's backstop; returns false when the grant has no binding to move. */
export function moveGrantExpiry(bindings: Binding[], grantId: string, notAfter: Date): boolean {
  const found = bindings.filter((b) => grantIdOf(b) === grantId);
  for (const binding of found) binding.condition = { ...binding.condition, expression: expiryExpression(notAfter) };
  return found.length > 0;
}

/**
 * Drops Lapse bindings whose condition has ended (of any target: they grant nothing, but count
 * toward the 1,500-principal limit). Bindings not in Lapse's form are left alone.
 */
export function purgeExpired(bindings: Binding[], now: Date): number {
  return removeWhere(bindings, (b) => {
    const end = grantIdOf(b) === null ? null : bindingEnd(b);
    return end !== null && end.getTime() <= now.getTime();
  });
}

/** Takes one member out of the bindings of a role that are not Lapse's; drops bindings left empty. */
export function removeStandingMember(bindings: Binding[], role: string, member: string): number {
  let removed = 0;
  for (const binding of bindings) {
    if (binding.role !== role || grantIdOf(binding) !== null || !binding.members?.includes(member)) continue;
    binding.members = binding.members.filter((m) => m !== member);
    removed++;
  }
  removeWhere(bindings, (b) => (b.members?.length ?? 0) === 0);
  return removed;
}

function removeWhere(bindings: Binding[], drop: (binding: Binding) => boolean): number {
  const kept = bindings.filter((b) => !drop(b));
  const removed = bindings.length - kept.length;
  bindings.splice(0, bindings.length, ...kept);
  return removed;
}
