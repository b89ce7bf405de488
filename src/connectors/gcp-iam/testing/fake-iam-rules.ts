import { createHash } from 'node:crypto';
import type { Binding, Policy } from '../iam-policy.js';

/**
 * What the fake Cloud Resource Manager refuses in a setIamPolicy, and how it evaluates a policy
 * for testIamPermissions — the rules GCP documents that can be checked simply. Messages follow
 * Google's wording where it is known publicly and are paraphrased otherwise; the codes and
 * statuses (400 INVALID_ARGUMENT) are Google's.
 *
 * It cannot prove: the full CEL of IAM Conditions (only `request.time < timestamp("…")`, with
 * `&&`, is evaluated; anything else is treated as false), role permissions beyond the small
 * catalogue below, inheritance from folders and organizations, or deny policies.
 */

/** A small catalogue of real predefined roles, with a few of their real permissions. */
export const ROLE_PERMISSIONS: Readonly<Record<string, readonly string[]>> = {
  'roles/resourcemanager.projectIamAdmin': ['resourcemanager.projects.get', 'resourcemanager.projects.getIamPolicy', 'resourcemanager.projects.setIamPolicy'],
  'roles/resourcemanager.folderIamAdmin': ['resourcemanager.folders.get', 'resourcemanager.folders.getIamPolicy', 'resourcemanager.folders.setIamPolicy'],
  'roles/iam.securityAdmin': [
    'resourcemanager.projects.getIamPolicy',
    'resourcemanager.projects.setIamPolicy',
    'resourcemanager.folders.getIamPolicy',
    'resourcemanager.folders.setIamPolicy',
    'resourcemanager.organizations.getIamPolicy',
    'resourcemanager.organizations.setIamPolicy',
  ],
  'roles/iam.securityReviewer': ['resourcemanager.projects.getIamPolicy', 'resourcemanager.folders.getIamPolicy', 'resourcemanager.organizations.getIamPolicy'],
  'roles/browser': ['resourcemanager.projects.get', 'resourcemanager.folders.get'],
  'roles/bigquery.dataViewer': ['bigquery.tables.get', 'bigquery.tables.getData', 'bigquery.tables.list'],
  'roles/compute.viewer': ['compute.instances.get', 'compute.instances.list'],
  'roles/owner': ['resourcemanager.projects.get', 'resourcemanager.projects.getIamPolicy', 'resourcemanager.projects.setIamPolicy', 'compute.instances.get'],
  'roles/editor': ['resourcemanager.projects.get', 'compute.instances.get'],
  'roles/viewer': ['resourcemanager.projects.get', 'compute.instances.get'],
};

const BASIC_ROLES = new Set(['roles/owner', 'roles/editor', 'roles/viewer']);
const MAX_PRINCIPALS = 1_500;
const EMAIL = /^[^\s@:]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,}$/;
const TIMESTAMP_ARG = /timestamp\((["'])(.*?)\1\)/g;
const RFC3339 = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)$/;

export class InvalidArgument extends Error {}

/** Throws InvalidArgument for what IAM would refuse in a policy sent to setIamPolicy. */
export function checkPolicy(policy: Policy, customRoles: ReadonlySet<string>): void {
  const version = policy.version ?? 1;
  if (![0, 1, 3].includes(version)) throw new InvalidArgument(`Invalid policy version ${version}: valid values are 0, 1 and 3.`);
  const bindings = policy.bindings ?? [];
  let principals = 0;
  for (const binding of bindings) {
    const role = binding.role ?? '';
    if (!(role in ROLE_PERMISSIONS) && !customRoles.has(role)) throw new InvalidArgument(`Role ${role} is not supported for this resource.`);
    const members = binding.members ?? [];
    if (members.length === 0) throw new InvalidArgument(`Binding for role ${role} must contain at least one principal.`);
    for (const member of members) checkMember(member);
    principals += members.length;
    if (binding.condition) {
      if (version !== 3) throw new InvalidArgument('Conditional role bindings require policy version 3; set policy.version to 3.');
      if (BASIC_ROLES.has(role)) throw new InvalidArgument(`Role ${role} cannot be granted with a condition: conditions are not supported for basic roles.`);
      if (members.some((m) => m === 'allUsers' || m === 'allAuthenticatedUsers'))
        throw new InvalidArgument('Conditions are not supported for allUsers or allAuthenticatedUsers.');
      checkCondition(binding);
    }
  }
  if (principals > MAX_PRINCIPALS)
    throw new InvalidArgument(`The number of principals in the policy (${principals}) is larger than the maximum allowed size ${MAX_PRINCIPALS}.`);
}

function checkMember(member: string): void {
  if (member === 'allUsers' || member === 'allAuthenticatedUsers') return;
  const colon = member.indexOf(':');
  const [type, rest] = [member.slice(0, colon), member.slice(colon + 1)];
  const ok =
    colon > 0 &&
    (((type === 'user' || type === 'group') && EMAIL.test(rest)) ||
      (type === 'serviceAccount' && EMAIL.test(rest) && rest.endsWith('.gserviceaccount.com')) ||
      (type === 'domain' && /^[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,}$/.test(rest)));
  if (!ok) throw new InvalidArgument(`Invalid principal: ${member.slice(0, 100)}. Principals look like user:alice@example.com.`);
}

function checkCondition(binding: Binding): void {
  const { title, expression, description } = binding.condition ?? {};
  if (!title) throw new InvalidArgument('Condition title is required.');
  if (title.length > 100) throw new InvalidArgument('Condition title must be at most 100 characters.');
  if ((description ?? '').length > 256) throw new InvalidArgument('Condition description must be at most 256 characters.');
  if (!expression || expression.length > 12_800) throw new InvalidArgument('Condition expression is required and must be at most 12800 characters.');
  let depth = 0;
  let quote: string | null = null;
  for (const ch of expression) {
    if (quote) {
      if (ch === quote) quote = null;
    } else if (ch === '"' || ch === "'") quote = ch;
    else if (ch === '(') depth++;
    else if (ch === ')' && --depth < 0) break;
  }
  if (quote || depth !== 0) throw new InvalidArgument(`Condition expression does not parse: ${expression.slice(0, 100)}`);
  for (const [, , value] of expression.matchAll(TIMESTAMP_ARG)) {
    if (!RFC3339.test(value!) || Number.isNaN(Date.parse(value!)))
      throw new InvalidArgument(`Condition expression has an invalid timestamp "${value!.slice(0, 40)}".`);
  }
}

/** Whether a binding grants at `now`: no condition, or one made of `request.time < timestamp(…)` terms joined by &&. */
export function conditionHolds(binding: Binding, now: Date): boolean {
  const expression = binding.condition?.expression;
  if (!binding.condition) return true;
  if (!expression) return false;
  return expression.split('&&').every((term) => {
    const match = /^\s*request\.time\s*<\s*timestamp\((["'])(.*?)\1\)\s*$/.exec(term);
    return match !== null && now.getTime() < Date.parse(match[2]!);
  });
}

/** The permissions of `wanted` that `member` holds through the bindings (no inheritance, no deny policies). */
export function heldPermissions(
  bindings: readonly Binding[],
  member: string,
  wanted: readonly string[],
  customRoles: ReadonlyMap<string, readonly string[]>,
  now: Date,
): string[] {
  const held = new Set<string>();
  for (const binding of bindings) {
    if (!binding.members?.includes(member) || !conditionHolds(binding, now)) continue;
    for (const permission of ROLE_PERMISSIONS[binding.role ?? ''] ?? customRoles.get(binding.role ?? '') ?? []) held.add(permission);
  }
  return wanted.filter((p) => held.has(p));
}

/**
 * A policy as a version-1 reader sees it: IAM hides conditions from such readers by renaming
 * conditional bindings' roles `<role>_withcond_<hash>`, so a client that forgets to ask for
 * version 3 and writes back what it read gets refused instead of silently dropping conditions.
 */
export function asVersion1(policy: Policy): Policy {
  if (!(policy.bindings ?? []).some((b) => b.condition)) return policy;
  return {
    ...policy,
    version: 1,
    bindings: (policy.bindings ?? []).map((b) =>
      b.condition
        ? {
            role: `${b.role}_withcond_${createHash('sha256').update(JSON.stringify(b.condition)).digest('hex').slice(0, 20)}`,
            members: b.members ?? [],
          }
        : b,
    ),
  };
}
