import { IdentitystoreClient } from '@aws-sdk/client-identitystore';
import {
  CreateAccountAssignmentCommand,
  DeleteAccountAssignmentCommand,
  DescribeAccountAssignmentCreationStatusCommand,
  DescribeAccountAssignmentDeletionStatusCommand,
  DescribePermissionSetCommand,
  DescribePermissionSetProvisioningStatusCommand,
  ListAccountAssignmentsCommand,
  SSOAdminClient,
  type AccountAssignment,
  type AccountAssignmentOperationStatus,
  type PermissionSet,
} from '@aws-sdk/client-sso-admin';
import type { TargetConfig } from '../../config/types.js';
import { LapseError } from '../../domain/errors.js';
import { awsClientConfig } from '../aws/index.js';
import { MAX_WAIT_MS, type IdentityCenterTarget } from './settings.js';

/**
 * IAM Identity Center and Identity Store as the connector uses them: one pair of SDK clients per
 * target (kept while the target's config lives, so connections and the SDK's retry budget are
 * shared), every call under the caller's deadline, AWS's refusals turned into LapseErrors that
 * name the IAM action to grant, conflicts retried with bounded backoff (the SDK retries throttling
 * and 5xx itself), and the asynchronous operations polled to their end.
 */

interface Clients {
  readonly sso: SSOAdminClient;
  readonly identityStore: IdentitystoreClient;
}

const clients = new WeakMap<TargetConfig, Clients>();

/** A conflicting operation is retried this many times (doubling waits) before the call fails. */
const CONFLICT_ATTEMPTS = 8;

export type AssignmentStatus = Pick<AccountAssignmentOperationStatus, 'Status' | 'FailureReason' | 'RequestId'>;

export class IdentityCenterApi {
  readonly sso: SSOAdminClient;
  readonly identityStore: IdentitystoreClient;

  constructor(
    readonly target: TargetConfig,
    readonly settings: IdentityCenterTarget,
    readonly signal: AbortSignal,
  ) {
    let pair = clients.get(target);
    if (!pair) {
      pair = {
        sso: new SSOAdminClient(awsClientConfig(target, settings.aws, 'sso')),
        identityStore: new IdentitystoreClient(awsClientConfig(target, settings.aws, 'identitystore')),
      };
      clients.set(target, pair);
    }
    this.sso = pair.sso;
    this.identityStore = pair.identityStore;
  }

  /** Runs one SDK call as `action` (e.g. `sso:ListAccountAssignments`); resolves undefined for the error names in `expected`. */
  async call<T>(action: string, send: (options: { abortSignal: AbortSignal }) => Promise<T>): Promise<T>;
  async call<T>(action: string, send: (options: { abortSignal: AbortSignal }) => Promise<T>, expected: readonly string[]): Promise<T | undefined>;
  async call<T>(action: string, send: (options: { abortSignal: AbortSignal }) => Promise<T>, expected: readonly string[] = []): Promise<T | undefined> {
    if (this.signal.aborted) throw this.deadline(action);
    try {
      return await send({ abortSignal: this.signal });
    } catch (error) {
      if (this.signal.aborted) throw this.deadline(action);
      if (expected.includes(errorName(error))) return undefined;
      throw this.refused(action, error);
    }
  }

  /**
   * Runs `attempt` until it is not refused with ConflictException ("another operation on the
   * permission set is in progress"), waiting pollIntervalMs, doubling, capped at MAX_WAIT_MS, at
   * most CONFLICT_ATTEMPTS times. `settled` may answer that the conflict means the work is done.
   */
  async withoutConflict<T>(action: string, attempt: () => Promise<T>, settled?: () => Promise<boolean>): Promise<T | 'settled'> {
    for (let i = 1; ; i++) {
      try {
        return await attempt();
      } catch (error) {
        if (!(error instanceof LapseError) || error.details.awsError !== 'ConflictException') throw error;
        if (settled && (await settled())) return 'settled';
        if (i >= CONFLICT_ATTEMPTS) {
          throw new LapseError(
            'connector_failed',
            `aws-identity-center target ${this.target.name}: ${action} still conflicted with another operation on the permission set after ${i} attempts`,
            { where: `targets.${this.target.name}`, hint: 'something else is changing this permission set (a deployment, another tool); Lapse retries later' },
          );
        }
        await this.pause(i);
      }
    }
  }

  /** Waits the i-th backoff step: pollIntervalMs · 2^(i-1), capped, with jitter, under the deadline. */
  async pause(i: number): Promise<void> {
    const base = Math.min(this.settings.pollIntervalMs * 2 ** Math.min(i - 1, 16), MAX_WAIT_MS);
    const ms = base / 2 + Math.random() * (base / 2);
    await new Promise<void>((resolve, reject) => {
      if (this.signal.aborted) return reject(this.deadline('waiting'));
      const stop = () => {
        clearTimeout(timer);
        reject(this.deadline('waiting'));
      };
      const timer = setTimeout(() => {
        this.signal.removeEventListener('abort', stop);
        resolve();
      }, ms);
      this.signal.addEventListener('abort', stop, { once: true });
    });
  }

  /** Polls an assignment creation or deletion until it SUCCEEDED or FAILED. */
  async assignmentOutcome(kind: 'creation' | 'deletion', first: AccountAssignmentOperationStatus | undefined): Promise<AssignmentStatus> {
    let status: AssignmentStatus | undefined = first;
    for (let i = 1; status?.Status === 'IN_PROGRESS'; i++) {
      await this.pause(i);
      const InstanceArn = this.settings.instanceArn;
      const RequestId = status.RequestId!;
      status =
        kind === 'creation'
          ? (
              await this.call('sso:DescribeAccountAssignmentCreationStatus', (o) =>
                this.sso.send(new DescribeAccountAssignmentCreationStatusCommand({ InstanceArn, AccountAssignmentCreationRequestId: RequestId }), o),
              )
            ).AccountAssignmentCreationStatus
          : (
              await this.call('sso:DescribeAccountAssignmentDeletionStatus', (o) =>
                this.sso.send(new DescribeAccountAssignmentDeletionStatusCommand({ InstanceArn, AccountAssignmentDeletionRequestId: RequestId }), o),
              )
            ).AccountAssignmentDeletionStatus;
    }
    if (!status?.Status)
      throw new LapseError('connector_failed', `aws-identity-center target ${this.target.name}: AWS answered an assignment ${kind} without a status`);
    return status;
  }

  /** Polls ProvisionPermissionSet until it SUCCEEDED; FAILED throws. */
  async provisioningOutcome(permissionSetArn: string, requestId: string): Promise<void> {
    for (let i = 1; ; i++) {
      const { PermissionSetProvisioningStatus: status } = await this.call('sso:DescribePermissionSetProvisioningStatus', (o) =>
        this.sso.send(
          new DescribePermissionSetProvisioningStatusCommand({ InstanceArn: this.settings.instanceArn, ProvisionPermissionSetRequestId: requestId }),
          o,
        ),
      );
      if (status?.Status === 'SUCCEEDED') return;
      if (status?.Status === 'FAILED') {
        throw new LapseError(
          'connector_failed',
          `aws-identity-center target ${this.target.name}: provisioning permission set ${permissionSetArn} to its accounts failed: ${status.FailureReason ?? 'no reason given'}`,
          { where: `targets.${this.target.name}`, hint: 'look at the permission set in the IAM Identity Center console; Lapse retries' },
        );
      }
      await this.pause(i);
    }
  }

  createAssignment(permissionSetArn: string, accountId: string, userId: string): Promise<AccountAssignmentOperationStatus | undefined> {
    return this.call('sso:CreateAccountAssignment', async (o) => {
      const input = { InstanceArn: this.settings.instanceArn, PermissionSetArn: permissionSetArn, TargetId: accountId, TargetType: 'AWS_ACCOUNT' as const };
      return (await this.sso.send(new CreateAccountAssignmentCommand({ ...input, PrincipalType: 'USER', PrincipalId: userId }), o))
        .AccountAssignmentCreationStatus;
    });
  }

  /** Starts a deletion; null when AWS says there is no such assignment. */
  async deleteAssignment(permissionSetArn: string, accountId: string, userId: string): Promise<AccountAssignmentOperationStatus | null | undefined> {
    const input = { InstanceArn: this.settings.instanceArn, PermissionSetArn: permissionSetArn, TargetId: accountId, TargetType: 'AWS_ACCOUNT' as const };
    const answer = await this.call(
      'sso:DeleteAccountAssignment',
      (o) => this.sso.send(new DeleteAccountAssignmentCommand({ ...input, PrincipalType: 'USER', PrincipalId: userId }), o),
      ['ResourceNotFoundException'],
    );
    return answer === undefined ? null : answer.AccountAssignmentDeletionStatus;
  }

  /** Every assignment of the permission set in the account (users and groups), all pages. */
  async assignments(permissionSetArn: string, accountId: string): Promise<AccountAssignment[]> {
    const found: AccountAssignment[] = [];
    let NextToken: string | undefined;
    do {
      const page = await this.call('sso:ListAccountAssignments', (o) =>
        this.sso.send(
          new ListAccountAssignmentsCommand({
            InstanceArn: this.settings.instanceArn,
            AccountId: accountId,
            PermissionSetArn: permissionSetArn,
            MaxResults: 100,
            NextToken,
          }),
          o,
        ),
      );
      found.push(...(page.AccountAssignments ?? []));
      NextToken = page.NextToken;
    } while (NextToken);
    return found;
  }

  async isAssigned(permissionSetArn: string, accountId: string, userId: string): Promise<boolean> {
    return (await this.assignments(permissionSetArn, accountId)).some((a) => a.PrincipalType === 'USER' && a.PrincipalId === userId);
  }

  /** The permission set; throws a LapseError saying so when it does not exist. */
  async permissionSet(permissionSetArn: string): Promise<PermissionSet> {
    const answer = await this.call(
      'sso:DescribePermissionSet',
      (o) => this.sso.send(new DescribePermissionSetCommand({ InstanceArn: this.settings.instanceArn, PermissionSetArn: permissionSetArn }), o),
      ['ResourceNotFoundException'],
    );
    if (!answer?.PermissionSet) {
      throw new LapseError(
        'connector_failed',
        `aws-identity-center target ${this.target.name}: permission set ${permissionSetArn} does not exist in instance ${this.settings.instanceArn}`,
        {
          where: `targets.${this.target.name}.entitlements`,
          hint: "fix the entitlement's permissionSet (aws sso-admin list-permission-sets --instance-arn …); a deleted permission set has no assignments left to revoke",
        },
      );
    }
    return answer.PermissionSet;
  }

  private deadline(action: string): LapseError {
    return new LapseError('connector_timeout', `aws-identity-center target ${this.target.name}: ${action} did not finish before the deadline`, {
      where: `targets.${this.target.name}`,
      hint: 'check that IAM Identity Center is reachable from Lapse (settings.endpoints, proxies), or raise scheduler.connectorTimeout',
    });
  }

  private refused(action: string, error: unknown): LapseError {
    const name = errorName(error);
    const message = error instanceof Error ? error.message.replace(/[^\x20-\x7e]/g, ' ').slice(0, 300) : String(error).slice(0, 300);
    const where = `targets.${this.target.name}`;
    const prefix = `aws-identity-center target ${this.target.name}: ${action}`;
    const details = { where, awsError: name };
    if (name === 'AccessDeniedException' || name === 'AccessDenied' || name === 'UnauthorizedException') {
      return new LapseError('connector_failed', `${prefix} was refused: Lapse's AWS identity lacks ${action}`, {
        ...details,
        hint: `allow ${action} in the policy of the identity Lapse uses (docs/connectors/aws-identity-center.md has the whole least-privilege policy)`,
        missingAction: action,
      });
    }
    if (name === 'CredentialsProviderError' || name === 'UnrecognizedClientException' || name === 'InvalidClientTokenId' || name === 'ExpiredTokenException') {
      return new LapseError('connector_failed', `${prefix} failed: AWS did not accept Lapse's credentials (${name})`, {
        ...details,
        hint: 'check settings.credentials (secret references) or the default credential chain (AWS_PROFILE, web identity, instance role)',
      });
    }
    if (name === 'ThrottlingException' || name === 'TooManyRequestsException') {
      return new LapseError('connector_failed', `${prefix} was still throttled after ${this.settings.aws.maxAttempts} attempts`, {
        ...details,
        hint: 'Lapse retries later; raise settings.maxAttempts, or ask AWS for a higher IAM Identity Center quota',
      });
    }
    return new LapseError('connector_failed', `${prefix} failed: ${name}: ${message}`, details);
  }
}

export function errorName(error: unknown): string {
  if (typeof error === 'object' && error !== null && 'name' in error && typeof error.name === 'string') return error.name;
  return 'Error';
}
