import type { EntitlementConfig, TargetConfig } from '../../config/types.js';
import { LapseError } from '../../domain/errors.js';
import { awsTargetProblems, parseAwsTarget, type AwsTarget } from '../aws/index.js';
import { checkInteger, checkKnownKeys } from '../shared/index.js';

/**
 * Settings of an `aws-identity-center` target (one IAM Identity Center instance and its identity
 * store, on top of the shared AWS settings) and of its entitlements (a permission set on a list of
 * accounts).
 *
 *   settings:
 *     region: eu-west-1
 *     instanceArn: arn:aws:sso:::instance/ssoins-0123456789abcdef
 *     identityStoreId: d-0123456789
 *     userAttribute: userName            # or email, or externalId (with externalIdIssuer)
 *     revokeSessions: true
 *   entitlements:
 *     admin:
 *       settings: { permissionSet: arn:aws:sso:::permissionSet/ssoins-0123456789abcdef/ps-0123456789abcdef, accounts: ['111122223333'] }
 */
export interface IdentityCenterTarget {
  readonly aws: AwsTarget;
  readonly instanceArn: string;
  readonly identityStoreId: string;
  /** Which Identity Store attribute a Lapse principal id is matched against. */
  readonly userAttribute: UserAttribute;
  /** The issuer of the external ids, for `userAttribute: externalId`. */
  readonly externalIdIssuer: string | undefined;
  /** Default for entitlements: deny sessions already issued, for their remaining lifetime, at revoke. */
  readonly revokeSessions: boolean;
  /** First wait between status polls and before retrying a conflicting operation; doubles up to MAX_WAIT_MS. */
  readonly pollIntervalMs: number;
  /** How long a principal's Identity Store user id is remembered (0: always looked up). */
  readonly userCacheMs: number;
}

export interface IdentityCenterEntitlement {
  readonly permissionSet: string;
  /** Sorted, without duplicates. */
  readonly accounts: readonly string[];
  readonly revokeSessions: boolean;
}

export const USER_ATTRIBUTES = ['userName', 'email', 'externalId'] as const;
export type UserAttribute = (typeof USER_ATTRIBUTES)[number];

export const MAX_ACCOUNTS = 100;
export const MAX_WAIT_MS = 5_000;

// The SDK model's patterns (sso-admin 2020-07-20, identitystore 2020-06-15).
export const INSTANCE_ARN = /^arn:aws(-[a-z]{1,5}){0,3}:sso:::instance\/(sso)?ins-[a-zA-Z0-9-.]{16}$/;
export const PERMISSION_SET_ARN = /^arn:aws(-[a-z]{1,5}){0,3}:sso:::permissionSet\/(sso)?ins-[a-zA-Z0-9-.]{16}\/ps-[a-zA-Z0-9-./]{16}$/;
export const IDENTITY_STORE_ID = /^(d-[0-9a-f]{10}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/;
export const ACCOUNT_ID = /^\d{12}$/;
export const USER_ID = /^([0-9a-f]{10}-|)[A-Fa-f0-9]{8}-[A-Fa-f0-9]{4}-[A-Fa-f0-9]{4}-[A-Fa-f0-9]{4}-[A-Fa-f0-9]{12}$/;

const TARGET_KEYS = ['instanceArn', 'identityStoreId', 'userAttribute', 'externalIdIssuer', 'revokeSessions', 'pollIntervalMs', 'userCacheMs'];
const ENTITLEMENT_KEYS = ['permissionSet', 'accounts', 'revokeSessions'];
const ARN_EXAMPLE = 'arn:aws:sso:::permissionSet/ssoins-0123456789abcdef/ps-0123456789abcdef';

/** The instance part (`ssoins-…`) of an instance or permission set ARN. */
export function instanceIdOf(arn: string): string {
  return /:(?:instance|permissionSet)\/((?:sso)?ins-[a-zA-Z0-9-.]{16})/.exec(arn)?.[1] ?? '';
}

export function targetProblems(target: TargetConfig): string[] {
  const where = `targets.${target.name}.settings`;
  const s = target.settings;
  const problems = awsTargetProblems(target, TARGET_KEYS);
  if (typeof s.instanceArn !== 'string' || !INSTANCE_ARN.test(s.instanceArn))
    problems.push(
      `${where}.instanceArn: must be an IAM Identity Center instance ARN, e.g. arn:aws:sso:::instance/ssoins-0123456789abcdef (aws sso-admin list-instances)`,
    );
  if (typeof s.identityStoreId !== 'string' || !IDENTITY_STORE_ID.test(s.identityStoreId))
    problems.push(`${where}.identityStoreId: must be the instance's identity store id, e.g. d-0123456789 (aws sso-admin list-instances)`);
  if (s.userAttribute !== undefined && !(USER_ATTRIBUTES as readonly unknown[]).includes(s.userAttribute))
    problems.push(`${where}.userAttribute: must be one of ${USER_ATTRIBUTES.join(', ')} (what a Lapse principal id is matched against)`);
  if (s.userAttribute === 'externalId') {
    if (typeof s.externalIdIssuer !== 'string' || s.externalIdIssuer.length === 0 || s.externalIdIssuer.length > 100)
      problems.push(
        `${where}.externalIdIssuer: userAttribute externalId needs the issuer of the ids (1 to 100 characters), as your IdP's SCIM provisioning sets it`,
      );
  } else if (s.externalIdIssuer !== undefined) {
    problems.push(`${where}.externalIdIssuer: only used with userAttribute: externalId; remove it`);
  }
  if (s.revokeSessions !== undefined && typeof s.revokeSessions !== 'boolean') problems.push(`${where}.revokeSessions: must be true or false`);
  problems.push(
    ...[checkInteger(s.pollIntervalMs, `${where}.pollIntervalMs`, 10, MAX_WAIT_MS), checkInteger(s.userCacheMs, `${where}.userCacheMs`, 0, 3_600_000)].filter(
      (p): p is string => p !== undefined,
    ),
  );
  const instanceId = typeof s.instanceArn === 'string' ? instanceIdOf(s.instanceArn) : '';
  for (const entitlement of target.entitlements.values()) problems.push(...entitlementProblems(target, entitlement, instanceId));
  problems.push(...overlapProblems(target));
  return problems;
}

function entitlementProblems(target: TargetConfig, entitlement: EntitlementConfig, instanceId: string): string[] {
  const where = `targets.${target.name}.entitlements.${entitlement.name}.settings`;
  const s = entitlement.settings;
  const problems = checkKnownKeys(s, ENTITLEMENT_KEYS, where);
  if (typeof s.permissionSet !== 'string' || !PERMISSION_SET_ARN.test(s.permissionSet)) {
    problems.push(`${where}.permissionSet: must be a permission set ARN, e.g. ${ARN_EXAMPLE} (aws sso-admin list-permission-sets)`);
  } else if (instanceId && instanceIdOf(s.permissionSet) !== instanceId) {
    problems.push(`${where}.permissionSet: belongs to instance ${instanceIdOf(s.permissionSet)}, not to the target's instanceArn (${instanceId})`);
  }
  problems.push(...accountProblems(s.accounts, `${where}.accounts`));
  if (s.revokeSessions !== undefined && typeof s.revokeSessions !== 'boolean') problems.push(`${where}.revokeSessions: must be true or false`);
  return problems;
}

function accountProblems(value: unknown, where: string): string[] {
  if (!Array.isArray(value) || value.length === 0 || value.length > MAX_ACCOUNTS)
    return [`${where}: must be a list of 1 to ${MAX_ACCOUNTS} AWS account ids, e.g. ['111122223333'] (organizational units are not supported yet)`];
  const problems: string[] = [];
  value.forEach((account, i) => {
    // NB. YAML reads an unquoted 12-digit id as a number, and 012345678901 as 12345678901.
    if (typeof account === 'number') problems.push(`${where}[${i}]: quote the account id ('${String(account).padStart(12, '0')}'): YAML reads it as a number`);
    else if (typeof account !== 'string' || !ACCOUNT_ID.test(account)) problems.push(`${where}[${i}]: must be a 12-digit AWS account id`);
  });
  if (problems.length === 0 && new Set(value).size !== value.length) problems.push(`${where}: lists an account twice; remove the duplicate`);
  return problems;
}

/**
 * Grants are reference-counted by access key, which is (permission set, account list, user): two
 * entitlements of one permission set whose account lists overlap without being equal would each
 * take away the shared accounts' assignment while the other still covers it.
 */
function overlapProblems(target: TargetConfig): string[] {
  const seen: { name: string; permissionSet: string; accounts: string[] }[] = [];
  const problems: string[] = [];
  for (const entitlement of target.entitlements.values()) {
    const { permissionSet, accounts } = entitlement.settings;
    if (typeof permissionSet !== 'string' || !Array.isArray(accounts)) continue;
    const mine = [...new Set(accounts.map(String))].sort();
    for (const other of seen) {
      if (other.permissionSet !== permissionSet) continue;
      const shared = mine.filter((a) => other.accounts.includes(a));
      const same = shared.length === mine.length && shared.length === other.accounts.length;
      if (shared.length > 0 && !same) {
        problems.push(
          `targets.${target.name}.entitlements.${entitlement.name}.settings.accounts: shares account ${shared[0]} with entitlement ${other.name} on the same permission set; give both the same account list, or make the lists disjoint (ending one grant would remove the other's access there)`,
        );
      }
    }
    seen.push({ name: entitlement.name, permissionSet, accounts: mine });
  }
  return problems;
}

export function parseTarget(target: TargetConfig): IdentityCenterTarget {
  const problems = targetProblems(target);
  if (problems.length > 0)
    throw new LapseError('config_invalid', problems[0]!, { problems, hint: 'fix the target in lapse.yaml (lapse config validate shows every problem)' });
  const s = target.settings;
  return {
    aws: parseAwsTarget(target),
    instanceArn: s.instanceArn as string,
    identityStoreId: s.identityStoreId as string,
    userAttribute: (s.userAttribute as UserAttribute | undefined) ?? 'userName',
    externalIdIssuer: s.externalIdIssuer as string | undefined,
    revokeSessions: s.revokeSessions === true,
    pollIntervalMs: (s.pollIntervalMs as number | undefined) ?? 500,
    userCacheMs: (s.userCacheMs as number | undefined) ?? 60_000,
  };
}

/** Call after parseTarget (which checks every entitlement). */
export function parseEntitlement(settings: IdentityCenterTarget, entitlement: EntitlementConfig): IdentityCenterEntitlement {
  const s = entitlement.settings;
  return {
    permissionSet: s.permissionSet as string,
    accounts: [...new Set(s.accounts as string[])].sort(),
    revokeSessions: typeof s.revokeSessions === 'boolean' ? s.revokeSessions : settings.revokeSessions,
  };
}
