import type { EntitlementConfig, TargetConfig } from '../../config/types.js';
import { LapseError } from '../../domain/errors.js';
import { checkInteger, checkKnownKeys } from '../shared/index.js';
import { isLoopback } from '../webhook/index.js';
import { memberProblem, type MemberType, MEMBER_TYPES } from './members.js';

/** Settings of a `gcp-iam` target: how Lapse reaches Cloud Resource Manager and who it is there. */
export interface GcpTarget {
  /** A service-account key (JSON), or undefined for Application Default Credentials / workload identity. */
  readonly credentials: ServiceAccountKey | undefined;
  readonly rootUrl: string;
  readonly timeoutMs: number;
  readonly memberType: MemberType;
  /** principal id -> IAM member (`user:…`, `group:…`, `serviceAccount:…`), overriding memberType. */
  readonly members: Readonly<Record<string, string>>;
}

export interface ServiceAccountKey {
  readonly client_email: string;
  readonly private_key: string;
  readonly [key: string]: unknown;
}

/** One entitlement: a role on a project, folder or organization. */
export interface GcpEntitlement {
  readonly role: string;
  readonly resource: string;
}

export const DEFAULT_ROOT_URL = 'https://cloudresourcemanager.googleapis.com/';
const TARGET_KEYS = ['credentials', 'rootUrl', 'timeoutMs', 'memberType', 'members', 'resource'] as const;
const ENTITLEMENT_KEYS = ['role', 'resource'] as const;
const MAX_KEY_BYTES = 16 * 1024;

/** `projects/<id or number>`, `folders/<number>`, `organizations/<number>`. */
const RESOURCE = /^(?:projects\/(?:[a-z][a-z0-9-]{4,28}[a-z0-9]|[0-9]{1,20})|folders\/[0-9]{1,20}|organizations\/[0-9]{1,20})$/;
/** Predefined `roles/…`, or a custom role of a project or organization. */
const ROLE =
  /^(?:roles\/[A-Za-z0-9_.]{1,128}|projects\/(?:[a-z][a-z0-9-]{4,28}[a-z0-9]|[0-9]{1,20})\/roles\/[A-Za-z0-9_.]{3,64}|organizations\/[0-9]{1,20}\/roles\/[A-Za-z0-9_.]{3,64})$/;
/** NB. IAM refuses conditions on the legacy basic roles, and every Lapse binding carries one. */
const BASIC_ROLES = new Set(['roles/owner', 'roles/editor', 'roles/viewer']);

export function resourceProblem(value: unknown, where: string): string | undefined {
  if (typeof value !== 'string' || !RESOURCE.test(value))
    return `${where}: must be projects/<project id>, folders/<number> or organizations/<number>, e.g. projects/acme-prod`;
  return undefined;
}

export function targetProblems(target: TargetConfig): string[] {
  const where = `targets.${target.name}.settings`;
  const s = target.settings;
  const problems = checkKnownKeys(s, TARGET_KEYS, where);
  if (s.credentials !== undefined) {
    const problem = keyProblem(s.credentials);
    if (problem) problems.push(`${where}.credentials: ${problem}`);
  }
  if (s.rootUrl !== undefined) {
    const problem = rootUrlProblem(s.rootUrl);
    if (problem) problems.push(`${where}.rootUrl: ${problem}`);
  }
  const timeout = checkInteger(s.timeoutMs, `${where}.timeoutMs`, 1_000, 120_000);
  if (timeout) problems.push(timeout);
  if (s.memberType !== undefined && !MEMBER_TYPES.includes(s.memberType as MemberType))
    problems.push(`${where}.memberType: must be one of ${MEMBER_TYPES.join(', ')} (how a principal id becomes an IAM member; default user)`);
  if (s.members !== undefined) {
    if (typeof s.members !== 'object' || s.members === null || Array.isArray(s.members))
      problems.push(`${where}.members: must map principal ids to IAM members, e.g. { alice: "user:alice@example.com" }`);
    else if (Object.keys(s.members).length > 10_000) problems.push(`${where}.members: at most 10000 entries`);
    else
      for (const [principal, member] of Object.entries(s.members)) {
        const problem = memberProblem(member);
        if (problem) problems.push(`${where}.members.${principal}: ${problem}`);
      }
  }
  if (s.resource !== undefined) {
    const problem = resourceProblem(s.resource, `${where}.resource`);
    if (problem) problems.push(problem);
  }
  for (const entitlement of target.entitlements.values()) problems.push(...entitlementProblems(target, entitlement));
  return problems;
}

function entitlementProblems(target: TargetConfig, entitlement: EntitlementConfig): string[] {
  const where = `targets.${target.name}.entitlements.${entitlement.name}.settings`;
  const s = entitlement.settings;
  const problems = checkKnownKeys(s, ENTITLEMENT_KEYS, where);
  if (typeof s.role !== 'string' || !ROLE.test(s.role)) {
    problems.push(`${where}.role: must be a role name, roles/<name> (e.g. roles/bigquery.dataViewer) or a custom role projects/<id>/roles/<name>`);
  } else if (BASIC_ROLES.has(s.role)) {
    problems.push(
      `${where}.role: ${s.role} is a basic role, which IAM cannot grant with a condition (Lapse's expiry backstop); use predefined or custom roles`,
    );
  }
  if (s.resource !== undefined) {
    const problem = resourceProblem(s.resource, `${where}.resource`);
    if (problem) problems.push(problem);
  } else if (target.settings.resource === undefined) {
    problems.push(`${where}.resource: missing; name the project, folder or organization (or set targets.${target.name}.settings.resource for all)`);
  }
  return problems;
}

function keyProblem(value: unknown): string | undefined {
  const fix = 'must be a service-account key (JSON) by reference, e.g. ${file:/etc/lapse/gcp-key.json}; leave it out to use Application Default Credentials';
  if (typeof value !== 'string' || value.length > MAX_KEY_BYTES) return fix;
  let key: unknown;
  try {
    key = JSON.parse(value);
  } catch {
    return `${fix} (it is not JSON)`;
  }
  const k = key as Record<string, unknown>;
  if (typeof key !== 'object' || key === null || k.type !== 'service_account') return `${fix} (its "type" is not "service_account")`;
  if (typeof k.client_email !== 'string' || typeof k.private_key !== 'string' || !k.private_key.includes('PRIVATE KEY'))
    return `${fix} (it lacks client_email or private_key)`;
  return undefined;
}

function rootUrlProblem(value: unknown): string | undefined {
  if (typeof value !== 'string' || value.length > 2048 || !URL.canParse(value)) return `must be a URL, e.g. ${DEFAULT_ROOT_URL}`;
  const url = new URL(value);
  // NB. Every request carries a bearer token that can change the IAM policy: never in clear text off this host.
  if (url.protocol === 'http:' && !isLoopback(url.hostname))
    return 'plain http is allowed to loopback only (the bearer token travels in every request); use https://';
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return 'must start with https://';
  if (url.username || url.password || url.search || url.hash) return 'must not carry credentials, a query or a fragment';
  return undefined;
}

export function parseTarget(target: TargetConfig): GcpTarget {
  const problems = targetProblems(target);
  if (problems.length > 0)
    throw new LapseError('config_invalid', problems[0]!, { problems, hint: 'fix the target in lapse.yaml (lapse config validate shows every problem)' });
  const s = target.settings;
  const rootUrl = (s.rootUrl as string | undefined) ?? DEFAULT_ROOT_URL;
  return {
    credentials: typeof s.credentials === 'string' ? (JSON.parse(s.credentials) as ServiceAccountKey) : undefined,
    rootUrl: rootUrl.endsWith('/') ? rootUrl : `${rootUrl}/`,
    timeoutMs: (s.timeoutMs as number | undefined) ?? 30_000,
    memberType: (s.memberType as MemberType | undefined) ?? 'user',
    members: (s.members ?? {}) as Record<string, string>,
  };
}

/** Call after parseTarget (which checks every entitlement). */
export function parseEntitlement(target: TargetConfig, entitlement: EntitlementConfig): GcpEntitlement {
  return { role: entitlement.settings.role as string, resource: (entitlement.settings.resource ?? target.settings.resource) as string };
}
