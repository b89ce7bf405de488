import { LapseError } from '../../domain/errors.js';
import type { GcpTarget } from './settings.js';

/**
 * Lapse principals as IAM members: `<memberType>:<principal id>` (the id must then be an email
 * address), or the member `settings.members` maps the principal to. Only the three kinds a person
 * or workload can be granted a role as; `allUsers`, `domain:` and the like are refused.
 */
export const MEMBER_TYPES = ['user', 'group', 'serviceAccount'] as const;
export type MemberType = (typeof MEMBER_TYPES)[number];

// One address, no spaces or colons (a colon would smuggle in another member kind), bounded as RFC 5321 bounds it.
const EMAIL = /^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$/;

export function emailProblem(type: MemberType, email: string): string | undefined {
  if (email.length > 254 || !EMAIL.test(email)) return `"${email.slice(0, 80)}" is not an email address, which a ${type}: member must be`;
  if (type === 'serviceAccount' && !email.endsWith('.gserviceaccount.com'))
    return `"${email.slice(0, 80)}" is not a service account (their addresses end in .gserviceaccount.com)`;
  return undefined;
}

/** Problem with a member string as written in settings.members, or undefined. */
export function memberProblem(value: unknown): string | undefined {
  if (typeof value !== 'string') return 'must be an IAM member such as "user:alice@example.com"';
  const colon = value.indexOf(':');
  const type = value.slice(0, colon) as MemberType;
  if (colon < 0 || !MEMBER_TYPES.includes(type)) return `must start with ${MEMBER_TYPES.map((t) => `${t}:`).join(', ')} (got "${value.slice(0, 40)}")`;
  return emailProblem(type, value.slice(colon + 1));
}

/** The IAM member for a principal; throws a LapseError saying how to map it when it cannot be one. */
export function memberOf(settings: GcpTarget, target: string, principalId: string): string {
  const mapped = settings.members[principalId];
  if (mapped !== undefined) return mapped;
  const problem = emailProblem(settings.memberType, principalId);
  if (problem) {
    throw new LapseError('connector_failed', `gcp-iam target ${target}: principal ${principalId.slice(0, 80)} cannot be an IAM member: ${problem}`, {
      where: `targets.${target}.settings.members`,
      hint: `map the principal to its Google identity, e.g. members: { "${principalId.slice(0, 40)}": "user:someone@example.com" }, or set memberType`,
    });
  }
  return `${settings.memberType}:${principalId}`;
}

/** Maps members back to principal ids: through settings.members, the memberType prefix, or the member itself. */
export function principalsOf(settings: GcpTarget): (member: string) => string {
  const reverse = new Map(Object.entries(settings.members).map(([principal, member]) => [member, principal]));
  const prefix = `${settings.memberType}:`;
  return (member) => reverse.get(member) ?? (member.startsWith(prefix) ? member.slice(prefix.length) : member);
}
