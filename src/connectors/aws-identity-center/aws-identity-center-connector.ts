import { randomUUID } from 'node:crypto';
import {
  DescribeAccountAssignmentCreationStatusCommand,
  DescribeAccountAssignmentDeletionStatusCommand,
  DescribePermissionSetProvisioningStatusCommand,
  GetInlinePolicyForPermissionSetCommand,
} from '@aws-sdk/client-sso-admin';
import { GetUserIdCommand } from '@aws-sdk/client-identitystore';
import type { TargetConfig } from '../../config/types.js';
import { LapseError } from '../../domain/errors.js';
import type { AccessHandle, Connector, CurrentAccess, GrantSpec, ProvisionResult, RevokeResult } from '../types.js';
import { IdentityCenterApi } from './identity-center-api.js';
import { denySessions, liftDeny } from './session-deny.js';
import { ACCOUNT_ID, PERMISSION_SET_ARN, USER_ID, parseEntitlement, parseTarget, targetProblems, type IdentityCenterEntitlement } from './settings.js';
import { UserDirectory } from './user-directory.js';

/**
 * IAM Identity Center account assignments: a grant assigns the entitlement's permission set to
 * the principal's Identity Store user on each of the entitlement's accounts; revoke deletes those
 * assignments. Both are asynchronous at AWS, so each operation is polled until SUCCEEDED or FAILED
 * (a FAILED creation is an error, never an "active" grant without access). After a deletion
 * succeeded, ListAccountAssignments is read back; while it still lists the assignment, revoke
 * reports `propagationPending` and Lapse calls it again. With `revokeSessions`, sessions already
 * issued are denied for their remaining lifetime (session-deny.ts).
 */
export class AwsIdentityCenterConnector implements Connector {
  readonly type = 'aws-identity-center';
  private readonly directory: UserDirectory;
  /** Inline-policy updates of one permission set, one at a time in this process. */
  private readonly policyQueues = new Map<string, Promise<unknown>>();

  constructor(private readonly options: { readonly now?: () => number; readonly recheckInMs?: number } = {}) {
    this.directory = new UserDirectory(options.now);
  }

  validateSettings(target: TargetConfig): string[] {
    return targetProblems(target);
  }

  accessKey(grant: GrantSpec): string {
    const settings = parseTarget(grant.target);
    const { permissionSet, accounts } = parseEntitlement(settings, grant.entitlement);
    // NB. Per (permission set, accounts, user) and not per target: two targets on one instance
    // share assignments, and AWS keeps one assignment per permission set, account and user.
    return `aws-identity-center:${permissionSet}:${accounts.join(',')}:${settings.identityStoreId}:${settings.userAttribute}=${grant.principalId}`;
  }

  async provision(grant: GrantSpec, signal: AbortSignal): Promise<ProvisionResult> {
    const { api, entitlement } = this.open(grant.target, grant.entitlement.name, signal);
    const userId = await this.directory.userIdOf(api, grant.principalId);
    if (entitlement.revokeSessions)
      await this.policyUpdate(entitlement.permissionSet, () => liftDeny(api, entitlement.permissionSet, entitlement.accounts, userId, this.now()));
    for (const account of entitlement.accounts) await assign(api, entitlement.permissionSet, account, userId);
    return { handle: { userId, permissionSet: entitlement.permissionSet, accounts: [...entitlement.accounts] } };
  }

  async revoke(grant: GrantSpec, handle: AccessHandle | null, signal: AbortSignal): Promise<RevokeResult | void> {
    const { api, entitlement } = this.open(grant.target, grant.entitlement.name, signal);
    const fromHandle = handleOf(handle);
    const userId = fromHandle?.userId ?? (await this.directory.lookup(api, grant.principalId));
    // A user that does not exist (and never got a handle) cannot hold an assignment.
    if (!userId) return;
    const permissionSet = fromHandle?.permissionSet ?? entitlement.permissionSet;
    const accounts = fromHandle?.accounts ?? entitlement.accounts;
    // NB. Without a handle the grant may never have had access: deny sessions only if something was removed.
    return this.remove(api, permissionSet, accounts, userId, entitlement.revokeSessions ? (fromHandle ? 'always' : 'if-removed') : 'never');
  }

  async listAccess(target: TargetConfig, signal: AbortSignal): Promise<CurrentAccess[]> {
    const settings = parseTarget(target);
    const api = new IdentityCenterApi(target, settings, signal);
    const listed = new Map<string, Promise<{ userId: string }[]>>();
    const principals = new Map<string, Promise<string | null>>();
    const found: CurrentAccess[] = [];
    for (const config of target.entitlements.values()) {
      const { permissionSet, accounts } = parseEntitlement(settings, config);
      for (const account of accounts) {
        const key = `${permissionSet}|${account}`;
        if (!listed.has(key))
          listed.set(
            key,
            api
              .assignments(permissionSet, account)
              .then((all) => all.filter((a) => a.PrincipalType === 'USER' && a.PrincipalId).map((a) => ({ userId: a.PrincipalId! }))),
          );
        for (const { userId } of await listed.get(key)!) {
          if (!principals.has(userId)) principals.set(userId, this.directory.principalOf(api, userId));
          const principalId = (await principals.get(userId)!) ?? `identitystore:${userId}`;
          found.push({ account: `${account}/${userId}`, principalId, entitlement: config.name, grantId: null });
        }
      }
    }
    return found;
  }

  async removeAccess(target: TargetConfig, access: CurrentAccess, signal: AbortSignal): Promise<void> {
    const { api, entitlement } = this.open(target, access.entitlement, signal);
    const [account, userId] = access.account.split('/');
    if (!account || !ACCOUNT_ID.test(account) || !userId || !USER_ID.test(userId) || !entitlement.accounts.includes(account)) {
      throw new LapseError(
        'validation_failed',
        `aws-identity-center target ${target.name}: "${access.account.slice(0, 80)}" is not an assignment listAccess reported`,
        {
          where: `targets.${target.name}.entitlements.${access.entitlement}`,
        },
      );
    }
    // NB. A stale read-back is not an error here: the deletion succeeded, and the next run looks again.
    await this.remove(api, entitlement.permissionSet, [account], userId, entitlement.revokeSessions ? 'always' : 'never');
  }

  async checkTarget(target: TargetConfig, signal: AbortSignal): Promise<void> {
    const settings = parseTarget(target);
    const api = new IdentityCenterApi(target, settings, signal);
    const InstanceArn = settings.instanceArn;
    const probeId = randomUUID();
    const entitlements = [...target.entitlements.values()].map((e) => parseEntitlement(settings, e));
    for (const permissionSet of new Set(entitlements.map((e) => e.permissionSet))) await api.permissionSet(permissionSet);
    for (const { permissionSet, accounts } of entitlements) for (const account of accounts) await api.assignments(permissionSet, account);
    // Harmless probes: a request id no operation has, a user name nobody has; AWS checks the
    // permission before it looks, so AccessDenied names what is missing, ResourceNotFound proves it is there.
    const notFound = ['ResourceNotFoundException'];
    await api.call(
      'sso:DescribeAccountAssignmentCreationStatus',
      (o) => api.sso.send(new DescribeAccountAssignmentCreationStatusCommand({ InstanceArn, AccountAssignmentCreationRequestId: probeId }), o),
      notFound,
    );
    await api.call(
      'sso:DescribeAccountAssignmentDeletionStatus',
      (o) => api.sso.send(new DescribeAccountAssignmentDeletionStatusCommand({ InstanceArn, AccountAssignmentDeletionRequestId: probeId }), o),
      notFound,
    );
    const first = entitlements[0];
    const nobody = `00000000-0000-4000-8000-${probeId.slice(-12)}`;
    if (first) await api.withoutConflict('sso:DeleteAccountAssignment', () => api.deleteAssignment(first.permissionSet, first.accounts[0]!, nobody));
    const someone = await this.directory.anyUser(api);
    if (someone) await this.directory.principalOf(api, someone);
    await api.call(
      'identitystore:GetUserId',
      (o) =>
        api.identityStore.send(
          new GetUserIdCommand({
            IdentityStoreId: settings.identityStoreId,
            AlternateIdentifier: { UniqueAttribute: { AttributePath: 'userName', AttributeValue: `lapse-probe-${probeId}` } },
          }),
          o,
        ),
      notFound,
    );
    for (const { permissionSet } of entitlements.filter((e) => e.revokeSessions)) {
      await api.call('sso:GetInlinePolicyForPermissionSet', (o) =>
        api.sso.send(new GetInlinePolicyForPermissionSetCommand({ InstanceArn, PermissionSetArn: permissionSet }), o),
      );
      await api.call(
        'sso:DescribePermissionSetProvisioningStatus',
        (o) => api.sso.send(new DescribePermissionSetProvisioningStatusCommand({ InstanceArn, ProvisionPermissionSetRequestId: probeId }), o),
        notFound,
      );
    }
  }

  private open(target: TargetConfig, entitlementName: string, signal: AbortSignal): { api: IdentityCenterApi; entitlement: IdentityCenterEntitlement } {
    const settings = parseTarget(target);
    const config = target.entitlements.get(entitlementName);
    if (!config)
      throw new LapseError('not_found', `aws-identity-center target ${target.name} has no entitlement ${entitlementName}`, {
        where: `targets.${target.name}.entitlements`,
      });
    return { api: new IdentityCenterApi(target, settings, signal), entitlement: parseEntitlement(settings, config) };
  }

  private async remove(
    api: IdentityCenterApi,
    permissionSet: string,
    accounts: readonly string[],
    userId: string,
    sessions: 'always' | 'if-removed' | 'never',
  ): Promise<RevokeResult | void> {
    let removed = false;
    for (const account of accounts) removed = (await unassign(api, permissionSet, account, userId)) || removed;
    const wroteDeny =
      (sessions === 'always' || (sessions === 'if-removed' && removed)) &&
      (await this.policyUpdate(permissionSet, () => denySessions(api, permissionSet, accounts, userId, this.now())));
    const stale: string[] = [];
    for (const account of accounts) if (await api.isAssigned(permissionSet, account, userId)) stale.push(account);
    const pending = [
      ...(stale.length > 0
        ? [`IAM Identity Center still lists user ${userId} on account(s) ${stale.join(', ')} for ${permissionSet} after the deletion succeeded`]
        : []),
      // The API has no compare-and-set: another replica that read the policy before this write
      // and writes after it would drop the statement, so the next call reads it back once more.
      ...(wroteDeny
        ? [
            `the session-deny statement for user ${userId} was written to ${permissionSet}; Lapse reads it back once more in case a concurrent update replaced it`,
          ]
        : []),
    ];
    if (pending.length === 0) return;
    return {
      propagationPending: pending.join('; '),
      recheckInMs: this.options.recheckInMs ?? (stale.length > 0 ? 2_000 : Math.max(5_000, api.settings.aws.timeoutMs)),
    };
  }

  /** Runs inline-policy updates of one permission set one after another (the API has no compare-and-set). */
  private async policyUpdate<T>(permissionSet: string, update: () => Promise<T>): Promise<T> {
    const previous = this.policyQueues.get(permissionSet) ?? Promise.resolve();
    const mine = previous.catch(() => undefined).then(update);
    const tail = mine.catch(() => undefined);
    this.policyQueues.set(permissionSet, tail);
    try {
      return await mine;
    } finally {
      if (this.policyQueues.get(permissionSet) === tail) this.policyQueues.delete(permissionSet);
    }
  }

  private now(): Date {
    return new Date((this.options.now ?? Date.now)());
  }
}

/** Creates the assignment (or finds it made) and waits until AWS says it SUCCEEDED. */
async function assign(api: IdentityCenterApi, permissionSet: string, account: string, userId: string): Promise<void> {
  // NB. A conflict while the assignment is already listed is taken as "it exists": the engine
  // never provisions while a revoke of the same access is still running, so it is not one being deleted.
  const started = await api.withoutConflict(
    'sso:CreateAccountAssignment',
    () => api.createAssignment(permissionSet, account, userId),
    () => api.isAssigned(permissionSet, account, userId),
  );
  if (started === 'settled') return;
  const outcome = await api.assignmentOutcome('creation', started);
  if (outcome.Status === 'SUCCEEDED') return;
  throw new LapseError(
    'connector_failed',
    `aws-identity-center target ${api.target.name}: assigning ${permissionSet} on account ${account} to user ${userId} FAILED: ${outcome.FailureReason ?? 'no reason given'}`,
    {
      where: `targets.${api.target.name}`,
      hint: 'check that the account belongs to the organization of the Identity Center instance and that the user still exists; Lapse retries',
    },
  );
}

/** Deletes the assignment and waits until AWS says it is gone; succeeds if there was none. True if this call deleted it. */
async function unassign(api: IdentityCenterApi, permissionSet: string, account: string, userId: string): Promise<boolean> {
  // NB. No "settled" shortcut here: a list that does not show the assignment may be stale after a
  // creation still landing, and a revoke must not guess that access is gone.
  const started = await api.withoutConflict('sso:DeleteAccountAssignment', () => api.deleteAssignment(permissionSet, account, userId));
  if (started === null || started === 'settled') {
    await api.permissionSet(permissionSet); // NotFound for the assignment, not for a mistyped permission set
    return false;
  }
  const outcome = await api.assignmentOutcome('deletion', started);
  if (outcome.Status === 'SUCCEEDED') return true;
  if (!(await api.isAssigned(permissionSet, account, userId))) return false; // FAILED because there was nothing to delete
  throw new LapseError(
    'connector_failed',
    `aws-identity-center target ${api.target.name}: deleting the assignment of ${permissionSet} on account ${account} for user ${userId} FAILED: ${outcome.FailureReason ?? 'no reason given'}`,
    { where: `targets.${api.target.name}`, hint: 'Lapse retries the revoke; look at the assignment in the IAM Identity Center console if it keeps failing' },
  );
}

function handleOf(handle: AccessHandle | null): { userId: string; permissionSet: string; accounts: string[] } | null {
  if (!handle) return null;
  const { userId, permissionSet, accounts } = handle;
  if (typeof userId !== 'string' || !USER_ID.test(userId) || typeof permissionSet !== 'string' || !PERMISSION_SET_ARN.test(permissionSet)) return null;
  if (!Array.isArray(accounts) || accounts.length === 0 || !accounts.every((a) => typeof a === 'string' && ACCOUNT_ID.test(a))) return null;
  return { userId, permissionSet, accounts: accounts as string[] };
}
