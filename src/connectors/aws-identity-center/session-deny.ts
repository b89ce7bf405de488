import {
  DeleteInlinePolicyFromPermissionSetCommand,
  GetInlinePolicyForPermissionSetCommand,
  ProvisionPermissionSetCommand,
  PutInlinePolicyToPermissionSetCommand,
} from '@aws-sdk/client-sso-admin';
import { LapseError } from '../../domain/errors.js';
import type { IdentityCenterApi } from './identity-center-api.js';

/**
 * Ending sessions already issued (`revokeSessions: true`). Deleting an assignment stops new
 * sign-ins, but role sessions the AWS access portal already issued stay valid for the permission
 * set's session duration (1–12 h). So at revoke Lapse adds to the permission set's inline policy
 * one Deny-everything statement per user, limited to the user (`identitystore:userId`, the key
 * AWS's own guidance uses), the accounts whose assignment was removed (`aws:PrincipalAccount`) and
 * the time such a session can still live (`DateLessThan aws:CurrentTime`), then provisions the
 * permission set to its accounts. The time limit makes the statement harmless once past, even if
 * Lapse never removes it; Lapse prunes past statements whenever it writes the policy, and lifts
 * the user's statement for the accounts of a new grant at provision.
 *
 * Only statements whose Sid starts with `LapseRevokedSessions` are Lapse's: the customer's own
 * statements are kept exactly as they are (read-modify-write of Lapse's statements only).
 */

export const SID_PREFIX = 'LapseRevokedSessions';
/** IAM's limit on a role's inline policies, which the permission set's inline policy becomes. */
export const MAX_POLICY_CHARS = 10_240;
/** A statement that already lasts at least this close to the wanted end is not rewritten. */
const REWRITE_SLACK_MS = 15 * 60_000;
const MAX_SESSION_MS = 12 * 3_600_000;

interface Policy {
  Version: string;
  Statement: Record<string, unknown>[];
}

export interface DenyStatement {
  readonly userId: string;
  readonly accounts: readonly string[];
  readonly until: Date;
}

export function sidOf(userId: string): string {
  return `${SID_PREFIX}${userId.replace(/[^A-Za-z0-9]/g, '')}`;
}

export function parsePolicy(text: string | undefined): Policy {
  if (!text) return { Version: '2012-10-17', Statement: [] };
  const parsed = JSON.parse(text) as { Version?: string; Statement?: unknown };
  const statements = parsed.Statement === undefined ? [] : Array.isArray(parsed.Statement) ? parsed.Statement : [parsed.Statement];
  return { ...parsed, Version: parsed.Version ?? '2012-10-17', Statement: statements as Record<string, unknown>[] };
}

/** Lapse's statement for one user, read back; null when the statement is not one Lapse wrote. */
export function readDeny(statement: Record<string, unknown>): DenyStatement | null {
  if (typeof statement.Sid !== 'string' || !statement.Sid.startsWith(SID_PREFIX)) return null;
  const condition = statement.Condition as Record<string, Record<string, unknown>> | undefined;
  const userId = condition?.StringEquals?.['identitystore:userId'];
  const accounts = condition?.StringEquals?.['aws:PrincipalAccount'];
  const until = condition?.DateLessThan?.['aws:CurrentTime'];
  if (typeof userId !== 'string' || typeof until !== 'string' || Number.isNaN(Date.parse(until))) return null;
  const list = Array.isArray(accounts) ? accounts.filter((a): a is string => typeof a === 'string') : typeof accounts === 'string' ? [accounts] : [];
  return { userId, accounts: list, until: new Date(until) };
}

export function denyStatement({ userId, accounts, until }: DenyStatement): Record<string, unknown> {
  return {
    Sid: sidOf(userId),
    Effect: 'Deny',
    Action: '*',
    Resource: '*',
    Condition: {
      StringEquals: { 'identitystore:userId': userId, 'aws:PrincipalAccount': [...accounts].sort() },
      DateLessThan: { 'aws:CurrentTime': until.toISOString().replace(/\.\d{3}Z$/, 'Z') },
    },
  };
}

/**
 * The policy with `change` applied to the user's Lapse statement (null removes it) and every
 * Lapse statement that is past dropped; `changed` says whether anything differs.
 */
export function rewrite(
  policy: Policy,
  userId: string,
  now: Date,
  change: (current: DenyStatement | null) => DenyStatement | null,
): { policy: Policy; changed: boolean } {
  const kept: Record<string, unknown>[] = [];
  let changed = false;
  let current: DenyStatement | null = null;
  for (const statement of policy.Statement) {
    const deny = readDeny(statement);
    if (deny && deny.until.getTime() <= now.getTime()) changed = true;
    else if (deny && statement.Sid === sidOf(userId)) current = deny;
    else kept.push(statement);
  }
  const next = change(current);
  if (next && next.accounts.length > 0) kept.push(denyStatement(next));
  const same = JSON.stringify(next && next.accounts.length > 0 ? denyStatement(next) : null) === JSON.stringify(current ? denyStatement(current) : null);
  return { policy: { ...policy, Statement: kept }, changed: changed || !same };
}

/** The session duration as milliseconds (ISO 8601 `PT8H`); the 12-hour maximum when unknown. */
export function sessionDurationMs(duration: string | undefined): number {
  const match = duration ? /^PT(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?$/.exec(duration) : null;
  if (!match || !(match[1] || match[2] || match[3])) return MAX_SESSION_MS;
  const ms = (Number(match[1] ?? 0) * 3600 + Number(match[2] ?? 0) * 60 + Number(match[3] ?? 0)) * 1000;
  return Math.min(Math.max(ms, 60_000), MAX_SESSION_MS);
}

/**
 * Denies the user's existing sessions in `accounts` until they must have ended; true when it
 * had to write the policy (the caller reads it back once more later, see updatePolicy).
 */
export async function denySessions(api: IdentityCenterApi, permissionSetArn: string, accounts: readonly string[], userId: string, now: Date): Promise<boolean> {
  const { SessionDuration } = await api.permissionSet(permissionSetArn);
  const wanted = new Date(Math.ceil((now.getTime() + sessionDurationMs(SessionDuration)) / 60_000) * 60_000);
  return updatePolicy(
    api,
    permissionSetArn,
    userId,
    now,
    (current) => {
      const covered = current !== null && accounts.every((a) => current.accounts.includes(a));
      if (covered && current.until.getTime() >= wanted.getTime() - REWRITE_SLACK_MS) return current;
      const union = [...new Set([...(current?.accounts ?? []), ...accounts])];
      return { userId, accounts: union, until: new Date(Math.max(wanted.getTime(), current?.until.getTime() ?? 0)) };
    },
    true,
  );
}

/** Lifts the user's deny for `accounts` (a new grant there), leaving other accounts denied. */
export async function liftDeny(api: IdentityCenterApi, permissionSetArn: string, accounts: readonly string[], userId: string, now: Date): Promise<void> {
  await updatePolicy(api, permissionSetArn, userId, now, (current) =>
    current ? { ...current, accounts: current.accounts.filter((a) => !accounts.includes(a)) } : null,
  );
}

/**
 * Read-modify-write of the inline policy, then ProvisionPermissionSet so the accounts' roles get
 * it. `always` provisions even when the policy already says what is wanted (a crash may have
 * come between the write and the provisioning). Another writer may replace the policy between
 * our read and our write (the API has no compare-and-set), so after provisioning the policy is
 * read again and the whole step repeated if the user's statement is not as written. A writer
 * that read before our write and writes after that read-back still replaces it, so this returns
 * whether it wrote and the caller checks once more after such a writer must have finished.
 */
async function updatePolicy(
  api: IdentityCenterApi,
  permissionSetArn: string,
  userId: string,
  now: Date,
  change: (current: DenyStatement | null) => DenyStatement | null,
  always = false,
): Promise<boolean> {
  const InstanceArn = api.settings.instanceArn;
  const read = async () =>
    parsePolicy(
      (
        await api.call('sso:GetInlinePolicyForPermissionSet', (o) =>
          api.sso.send(new GetInlinePolicyForPermissionSetCommand({ InstanceArn, PermissionSetArn: permissionSetArn }), o),
        )
      ).InlinePolicy,
    );
  let wrote = false;
  for (let round = 1; round <= 3; round++) {
    // NB. A write refused as a conflict (a provisioning in progress) reads again before it retries:
    // retrying the same text later would put back a policy read long ago.
    const step = await api.withoutConflict('sso:PutInlinePolicyToPermissionSet', async () => {
      const next = rewrite(await read(), userId, now, change);
      if (next.changed) await write(api, permissionSetArn, next.policy);
      return next;
    });
    if (step === 'settled') throw new Error('unreachable: no settled check was given');
    const { policy, changed } = step;
    wrote ||= changed;
    if (!changed && !always) return wrote;
    const expected = JSON.stringify(policy.Statement.find((s) => s.Sid === sidOf(userId)) ?? null);
    const started = await api.withoutConflict('sso:ProvisionPermissionSet', () =>
      api.call('sso:ProvisionPermissionSet', (o) =>
        api.sso.send(new ProvisionPermissionSetCommand({ InstanceArn, PermissionSetArn: permissionSetArn, TargetType: 'ALL_PROVISIONED_ACCOUNTS' }), o),
      ),
    );
    if (started !== 'settled') await api.provisioningOutcome(permissionSetArn, started.PermissionSetProvisioningStatus!.RequestId!);
    const after = (await read()).Statement.find((s) => s.Sid === sidOf(userId)) ?? null;
    if (JSON.stringify(after) === expected) return wrote;
  }
  throw new LapseError(
    'connector_failed',
    `aws-identity-center target ${api.target.name}: the inline policy of ${permissionSetArn} kept changing under Lapse's update`,
    {
      where: `targets.${api.target.name}`,
      hint: 'another tool is rewriting this permission set; Lapse retries later',
    },
  );
}

async function write(api: IdentityCenterApi, permissionSetArn: string, policy: Policy): Promise<void> {
  const InstanceArn = api.settings.instanceArn;
  if (policy.Statement.length === 0) {
    await api.call('sso:DeleteInlinePolicyFromPermissionSet', (o) =>
      api.sso.send(new DeleteInlinePolicyFromPermissionSetCommand({ InstanceArn, PermissionSetArn: permissionSetArn }), o),
    );
    return;
  }
  const text = JSON.stringify(policy);
  if (text.length > MAX_POLICY_CHARS) {
    const ours = policy.Statement.filter((s) => readDeny(s) !== null).length;
    throw new LapseError(
      'connector_failed',
      `aws-identity-center target ${api.target.name}: the inline policy of ${permissionSetArn} would be ${text.length} characters with Lapse's ${ours} session-deny statement(s), over IAM's ${MAX_POLICY_CHARS}`,
      {
        where: `targets.${api.target.name}`,
        hint: "shorten the permission set's own inline policy (move it to a managed policy); Lapse's statements drop out once past their end, and the revoke is retried until then",
      },
    );
  }
  await api.call('sso:PutInlinePolicyToPermissionSet', (o) =>
    api.sso.send(new PutInlinePolicyToPermissionSetCommand({ InstanceArn, PermissionSetArn: permissionSetArn, InlinePolicy: text }), o),
  );
}
