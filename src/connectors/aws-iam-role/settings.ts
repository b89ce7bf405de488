import type { EntitlementConfig, TargetConfig } from '../../config/types.js';
import { LapseError } from '../../domain/errors.js';
import { awsTargetProblems, parseAwsTarget, type AwsTarget } from '../aws/index.js';
import { checkInteger, checkKnownKeys } from '../shared/index.js';

/**
 * Settings of an `aws-iam-role` target (the shared AWS settings: region, Lapse's credentials,
 * endpoints, retries) and of its entitlements (one IAM role each):
 *
 *   entitlements:
 *     prod-admin:
 *       settings:
 *         roleArn: arn:aws:iam::111122223333:role/lapse/prod-admin
 *         maxSessionDuration: 3600      # optional cap below the role's own MaxSessionDuration
 *         externalId: lapse-prod        # optional, when the trust policy requires sts:ExternalId
 *         sessionPolicy: { Version: "2012-10-17", Statement: [...] }   # optional, narrows the role
 */
export interface RoleEntitlement {
  readonly roleArn: string;
  /** The role's name (last path segment of the ARN): what IAM's role APIs take. */
  readonly roleName: string;
  readonly account: string;
  readonly maxSessionSeconds: number | undefined;
  readonly externalId: string | undefined;
  /** The session policy, packed (no whitespace), as AssumeRole takes it. */
  readonly sessionPolicy: string | undefined;
}

const ENTITLEMENT_KEYS = ['roleArn', 'maxSessionDuration', 'sessionPolicy', 'externalId'] as const;
/** IAM role ARNs: partition, 12-digit account, optional path, a name of up to 64 characters. */
const ROLE_ARN = /^arn:(aws|aws-us-gov|aws-cn|aws-iso|aws-iso-b):iam::(\d{12}):role\/(?:[\w+=,.@-]+\/)*([\w+=,.@-]{1,64})$/;
const EXTERNAL_ID = /^[\w+=,.@:/-]{2,1224}$/;
/** AWS's limit on an inline session policy, in characters of the packed JSON. */
export const MAX_SESSION_POLICY = 2048;
export const MIN_SESSION_SECONDS = 900;
export const MAX_SESSION_SECONDS = 43_200;

export function targetProblems(target: TargetConfig): string[] {
  const problems = awsTargetProblems(target, []);
  for (const entitlement of target.entitlements.values()) problems.push(...entitlementProblems(target, entitlement));
  return problems;
}

function entitlementProblems(target: TargetConfig, entitlement: EntitlementConfig): string[] {
  const where = `targets.${target.name}.entitlements.${entitlement.name}.settings`;
  const s = entitlement.settings;
  const problems = checkKnownKeys(s, ENTITLEMENT_KEYS, where);
  if (typeof s.roleArn !== 'string' || s.roleArn.length > 2048 || !ROLE_ARN.test(s.roleArn)) {
    problems.push(`${where}.roleArn: must be an IAM role ARN, e.g. arn:aws:iam::111122223333:role/prod-admin`);
  }
  const cap = checkInteger(s.maxSessionDuration, `${where}.maxSessionDuration`, MIN_SESSION_SECONDS, MAX_SESSION_SECONDS);
  if (cap) problems.push(`${cap} seconds (AWS issues sessions of 15 minutes to 12 hours)`);
  if (s.externalId !== undefined && (typeof s.externalId !== 'string' || !EXTERNAL_ID.test(s.externalId))) {
    problems.push(`${where}.externalId: must be 2 to 1224 characters of letters, digits and _+=,.@:/- (the sts:ExternalId the role's trust policy requires)`);
  }
  if (s.sessionPolicy !== undefined) {
    const packed = packSessionPolicy(s.sessionPolicy);
    if (typeof packed !== 'string') problems.push(`${where}.sessionPolicy: ${packed.problem}`);
  }
  return problems;
}

/**
 * The session policy as AssumeRole takes it: JSON without whitespace. Accepts a YAML map or a
 * JSON string; returns the problem instead when it is not a policy document or is too long.
 */
function packSessionPolicy(value: unknown): string | { problem: string } {
  let document: unknown = value;
  if (typeof value === 'string') {
    if (value.length > 64 * 1024) return { problem: `must be a policy document of at most ${MAX_SESSION_POLICY} characters without whitespace` };
    try {
      document = JSON.parse(value);
    } catch {
      return { problem: 'is not valid JSON; write it as a YAML map or a JSON policy document' };
    }
  }
  if (typeof document !== 'object' || document === null || Array.isArray(document) || !('Statement' in document)) {
    return { problem: 'must be an IAM policy document with Version "2012-10-17" and a Statement list' };
  }
  if ((document as { Version?: unknown }).Version !== '2012-10-17') return { problem: 'must say Version: "2012-10-17"' };
  const packed = JSON.stringify(document);
  if (packed.length > MAX_SESSION_POLICY) {
    return {
      problem: `is ${packed.length} characters without whitespace; AWS accepts at most ${MAX_SESSION_POLICY}: narrow it or use a managed policy on the role`,
    };
  }
  return packed;
}

export function isRoleArn(value: unknown): value is string {
  return typeof value === 'string' && value.length <= 2048 && ROLE_ARN.test(value);
}

/** The shared AWS settings of a target, after checking the whole target (entitlements too). */
export function parseTarget(target: TargetConfig): AwsTarget {
  const problems = targetProblems(target);
  if (problems.length > 0) {
    throw new LapseError('config_invalid', problems[0]!, { problems, hint: 'fix the target in lapse.yaml (lapse config validate shows every problem)' });
  }
  return parseAwsTarget(target);
}

/** Call after parseTarget (which checks every entitlement). */
export function parseEntitlement(entitlement: EntitlementConfig): RoleEntitlement {
  const s = entitlement.settings;
  const [, , account, roleName] = ROLE_ARN.exec(s.roleArn as string) as unknown as [string, string, string, string];
  const packed = s.sessionPolicy === undefined ? undefined : packSessionPolicy(s.sessionPolicy);
  return {
    roleArn: s.roleArn as string,
    roleName,
    account,
    maxSessionSeconds: s.maxSessionDuration as number | undefined,
    externalId: s.externalId as string | undefined,
    sessionPolicy: typeof packed === 'string' ? packed : undefined,
  };
}
