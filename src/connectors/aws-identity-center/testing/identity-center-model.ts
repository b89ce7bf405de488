import { randomUUID } from 'node:crypto';
import { AwsError, type AwsCaller, type AwsFake, type JsonOperation } from '../../aws/testing/aws-fake.js';
import { PATTERNS, denies, page, pageOf, requireEnum, requireString, type Input } from './constraints.js';
import { identityStoreOperations } from './identity-store-operations.js';

/**
 * The state behind a fake IAM Identity Center instance and its Identity Store, for tests and
 * benchmarks only. Registered on an `AwsFake` (SigV4, JSON 1.1), it speaks the operations the
 * `aws-identity-center` connector calls, as the official SDK sends them: `sso` with target prefix
 * `SWBExternalService`, `identitystore` with `AWSIdentityStore`.
 *
 * What it does as AWS does: account assignments are created and deleted **asynchronously** (the
 * call answers IN_PROGRESS with a request id; the change lands `operationMs` later and the
 * Describe…Status call says SUCCEEDED, or FAILED for an account outside the organization or a
 * user that does not exist — the failure AWS TEAM never notices, its issue #522);
 * `ConflictException` ("There is a conflicting operation in process.") while another operation on
 * the same permission set is in progress; inputs checked against the SDK model's constraints
 * (`ValidationException`); unknown instances, permission sets, users and request ids answer
 * `ResourceNotFoundException`; denied actions answer `AccessDeniedException` naming the action;
 * pagination by NextToken. A new assignment provisions the permission set's role to the account
 * with its inline policy as it is then; later policy changes reach the role only through
 * ProvisionPermissionSet; the last assignment's removal deprovisions the role.
 *
 * What tests inject: `staleListsAfterDelete` (ListAccountAssignments keeps showing a deleted
 * assignment for that many calls: eventual consistency), throttling and 5xx through
 * `AwsFake.inject`, and the two answers AWS's documentation leaves open — a create of an assignment
 * that exists (`duplicateCreate`: succeeds, or ConflictException) and a delete of one that does not
 * (`deleteMissing`: ResourceNotFoundException, or a deletion that FAILS).
 *
 * What it cannot prove: IAM's real policy evaluation (`sessionWorks` judges only the Deny
 * statements the connector writes), real propagation times, quotas, the 10,240-character limit
 * as AWS counts it (here: the compact JSON's length), and AWS's exact error texts.
 */

export interface FakeUser {
  readonly userId: string;
  readonly userName: string;
  readonly emails: readonly string[];
  readonly externalIds: readonly { readonly issuer: string; readonly id: string }[];
}

interface PermissionSet {
  readonly name: string;
  readonly sessionDuration: string;
  inlinePolicy: string;
}

interface Operation {
  readonly kind: 'create' | 'delete' | 'provision';
  readonly requestId: string;
  readonly permissionSetArn: string;
  readonly accountId: string | undefined;
  readonly principalType: string | undefined;
  readonly principalId: string | undefined;
  readonly createdAt: Date;
  readonly dueAt: number;
  status: 'IN_PROGRESS' | 'SUCCEEDED' | 'FAILED';
  failureReason: string | undefined;
}

export const MAX_INLINE_POLICY = 10_240;

const key = (permissionSetArn: string, accountId: string, principalType = 'USER', principalId = '') =>
  `${permissionSetArn}|${accountId}|${principalType}|${principalId}`;

export class IdentityCenterModel {
  readonly instanceArn = 'arn:aws:sso:::instance/ssoins-7223a0b1c2d3e4f5';
  readonly identityStoreId = 'd-9067a1b2c3';
  readonly accounts = new Set<string>();
  readonly permissionSets = new Map<string, PermissionSet>();
  readonly users = new Map<string, FakeUser>();
  /** Actions (`sso:CreateAccountAssignment`…) answered with AccessDeniedException. */
  readonly denied = new Set<string>();
  /** How long an assignment or provisioning operation stays IN_PROGRESS. */
  operationMs = 20;
  staleListsAfterDelete = 0;
  duplicateCreate: 'succeed' | 'conflict' = 'succeed';
  deleteMissing: 'not-found' | 'fails-async' = 'not-found';
  readonly counts = { conflicts: 0, creates: 0, deletes: 0, provisions: 0 };
  private readonly assignments = new Set<string>();
  /** The inline policy the permission set's role in an account carries, by `ps|account`. */
  private readonly roles = new Map<string, string>();
  private readonly operations = new Map<string, Operation>();
  private readonly ghosts = new Map<string, number>();

  register(fake: AwsFake): void {
    const guard =
      (service: string, name: string, run: (input: Input) => unknown): JsonOperation =>
      (input, caller) => {
        this.authorize(`${service}:${name}`, caller);
        this.settle();
        return run(input);
      };
    const sso = Object.fromEntries(Object.entries(this.ssoOperations()).map(([name, run]) => [name, guard('sso', name, run)]));
    const store = Object.fromEntries(Object.entries(identityStoreOperations(this)).map(([name, run]) => [name, guard('identitystore', name, run)]));
    fake.json('sso', 'SWBExternalService', sso);
    fake.json('identitystore', 'AWSIdentityStore', store);
  }

  addPermissionSet(name: string, sessionDuration = 'PT1H', inlinePolicy = ''): string {
    const arn = `arn:aws:sso:::permissionSet/ssoins-7223a0b1c2d3e4f5/ps-${randomUUID().replace(/-/g, '').slice(0, 16)}`;
    this.permissionSets.set(arn, { name, sessionDuration, inlinePolicy });
    return arn;
  }

  addUser(userName: string, emails: readonly string[] = [], externalIds: FakeUser['externalIds'] = []): FakeUser {
    const user = { userId: `9067a1b2c3-${randomUUID()}`, userName, emails, externalIds };
    this.users.set(user.userId, user);
    return user;
  }

  /** An assignment made in the console, behind Lapse's back: immediate, as seen after it succeeded. */
  assign(permissionSetArn: string, accountId: string, userId: string): void {
    this.apply({ kind: 'create', permissionSetArn, accountId, principalType: 'USER', principalId: userId });
  }

  hasAssignment(permissionSetArn: string, accountId: string, userId: string): boolean {
    this.settle();
    return this.assignments.has(key(permissionSetArn, accountId, 'USER', userId));
  }

  /** Whether a role session the user already holds in the account still works now (or at `at`). */
  sessionWorks(permissionSetArn: string, accountId: string, userId: string, at = new Date()): boolean {
    this.settle();
    const role = this.roles.get(`${permissionSetArn}|${accountId}`);
    return role !== undefined && !denies(role, { userId, account: accountId, at });
  }

  inlinePolicy(permissionSetArn: string): string {
    return this.permissionSets.get(permissionSetArn)?.inlinePolicy ?? '';
  }

  setInlinePolicy(permissionSetArn: string, policy: string): void {
    this.permissionSets.get(permissionSetArn)!.inlinePolicy = policy;
  }

  /** Lands every operation still in progress now, however long it was meant to take. */
  finishAll(): void {
    this.settle(Number.POSITIVE_INFINITY);
  }

  inProgress(): number {
    this.settle();
    return [...this.operations.values()].filter((o) => o.status === 'IN_PROGRESS').length;
  }

  private authorize(action: string, caller: AwsCaller): void {
    if (this.denied.has(action))
      throw new AwsError(
        'AccessDeniedException',
        `User: ${caller.identity} is not authorized to perform: ${action} because no identity-based policy allows the ${action} action`,
      );
  }

  /** Lands every operation that is due, in the order they were made. */
  private settle(now = Date.now()): void {
    for (const operation of this.operations.values()) {
      if (operation.status !== 'IN_PROGRESS' || operation.dueAt > now) continue;
      const failure = this.apply(operation);
      operation.status = failure ? 'FAILED' : 'SUCCEEDED';
      operation.failureReason = failure;
    }
  }

  private apply(op: Pick<Operation, 'kind' | 'permissionSetArn' | 'accountId' | 'principalType' | 'principalId'>): string | undefined {
    const roleKey = `${op.permissionSetArn}|${op.accountId}`;
    if (op.kind === 'provision') {
      for (const role of this.roles.keys())
        if (role.startsWith(`${op.permissionSetArn}|`) && (op.accountId === undefined || role === roleKey))
          this.roles.set(role, this.inlinePolicy(op.permissionSetArn));
      return undefined;
    }
    const assignment = key(op.permissionSetArn, op.accountId!, op.principalType, op.principalId);
    if (op.kind === 'create') {
      if (!this.accounts.has(op.accountId!)) return `Received a 404 status error: Not supported account id ${op.accountId}.`;
      if (op.principalType === 'USER' && !this.users.has(op.principalId!)) return `Received a 404 status error: Principal ${op.principalId} does not exist.`;
      this.assignments.add(assignment);
      this.ghosts.delete(assignment);
      if (!this.roles.has(roleKey)) this.roles.set(roleKey, this.inlinePolicy(op.permissionSetArn));
      return undefined;
    }
    if (!this.assignments.delete(assignment)) return `Received a 404 status error: The assignment does not exist.`;
    if (this.staleListsAfterDelete > 0) this.ghosts.set(assignment, this.staleListsAfterDelete);
    if (![...this.assignments].some((a) => a.startsWith(`${roleKey}|`))) this.roles.delete(roleKey);
    return undefined;
  }

  private instance(input: Input): void {
    if (requireString(input, 'InstanceArn', PATTERNS.InstanceArn) !== this.instanceArn)
      throw new AwsError('ResourceNotFoundException', `Instance ${String(input.InstanceArn)} does not exist.`);
  }

  private permissionSet(input: Input): [string, PermissionSet] {
    this.instance(input);
    const arn = requireString(input, 'PermissionSetArn', PATTERNS.PermissionSetArn);
    const found = this.permissionSets.get(arn);
    if (!found) throw new AwsError('ResourceNotFoundException', `Could not find PermissionSet with id ${arn.split('/').pop()}`);
    return [arn, found];
  }

  /** ConflictException while another operation on the permission set is in progress. */
  private exclusive(permissionSetArn: string): void {
    if ([...this.operations.values()].some((o) => o.status === 'IN_PROGRESS' && o.permissionSetArn === permissionSetArn)) {
      this.counts.conflicts++;
      throw new AwsError('ConflictException', 'There is a conflicting operation in process.');
    }
  }

  private start(kind: Operation['kind'], permissionSetArn: string, accountId?: string, principalType?: string, principalId?: string): Operation {
    const operation: Operation = {
      kind,
      requestId: randomUUID(),
      permissionSetArn,
      accountId,
      principalType,
      principalId,
      createdAt: new Date(),
      dueAt: Date.now() + this.operationMs,
      status: 'IN_PROGRESS',
      failureReason: undefined,
    };
    this.operations.set(operation.requestId, operation);
    this.counts[kind === 'create' ? 'creates' : kind === 'delete' ? 'deletes' : 'provisions']++;
    if (this.operationMs === 0) this.settle();
    return operation;
  }

  private assignmentInput(input: Input): { permissionSetArn: string; accountId: string; principalType: string; principalId: string } {
    const [permissionSetArn] = this.permissionSet(input);
    const accountId = requireString(input, 'TargetId', PATTERNS.AccountId, 12);
    requireEnum(input, 'TargetType', ['AWS_ACCOUNT']);
    const principalType = requireEnum(input, 'PrincipalType', ['USER', 'GROUP']);
    const principalId = requireString(input, 'PrincipalId', PATTERNS.PrincipalId, 47);
    return { permissionSetArn, accountId, principalType, principalId };
  }

  private operationStatus(input: Input, member: string, kind: Operation['kind']): Operation {
    this.instance(input);
    const requestId = requireString(input, member, PATTERNS.RequestId, 36);
    const operation = this.operations.get(requestId);
    if (!operation || operation.kind !== kind) throw new AwsError('ResourceNotFoundException', `Request ${requestId} does not exist.`);
    return operation;
  }

  private ssoOperations(): Record<string, (input: Input) => unknown> {
    const status = (o: Operation) => ({
      Status: o.status,
      RequestId: o.requestId,
      ...(o.failureReason ? { FailureReason: o.failureReason } : {}),
      TargetId: o.accountId,
      TargetType: 'AWS_ACCOUNT',
      PermissionSetArn: o.permissionSetArn,
      PrincipalType: o.principalType,
      PrincipalId: o.principalId,
      CreatedDate: o.createdAt.getTime() / 1000,
    });
    const provisioning = (o: Operation) => ({
      Status: o.status,
      RequestId: o.requestId,
      ...(o.accountId ? { AccountId: o.accountId } : {}),
      PermissionSetArn: o.permissionSetArn,
      CreatedDate: o.createdAt.getTime() / 1000,
    });
    return {
      ListInstances: () => ({ Instances: [{ InstanceArn: this.instanceArn, IdentityStoreId: this.identityStoreId, Status: 'ACTIVE' }] }),
      DescribePermissionSet: (input) => {
        const [arn, ps] = this.permissionSet(input);
        return { PermissionSet: { Name: ps.name, PermissionSetArn: arn, SessionDuration: ps.sessionDuration, CreatedDate: 1_700_000_000 } };
      },
      CreateAccountAssignment: (input) => {
        const a = this.assignmentInput(input);
        this.exclusive(a.permissionSetArn);
        const exists = this.assignments.has(key(a.permissionSetArn, a.accountId, a.principalType, a.principalId));
        if (exists && this.duplicateCreate === 'conflict') {
          this.counts.conflicts++;
          throw new AwsError('ConflictException', 'There is a conflicting operation in process.');
        }
        return { AccountAssignmentCreationStatus: status(this.start('create', a.permissionSetArn, a.accountId, a.principalType, a.principalId)) };
      },
      DeleteAccountAssignment: (input) => {
        const a = this.assignmentInput(input);
        this.exclusive(a.permissionSetArn);
        if (!this.assignments.has(key(a.permissionSetArn, a.accountId, a.principalType, a.principalId)) && this.deleteMissing === 'not-found')
          throw new AwsError('ResourceNotFoundException', 'AccountAssignment does not exist.');
        return { AccountAssignmentDeletionStatus: status(this.start('delete', a.permissionSetArn, a.accountId, a.principalType, a.principalId)) };
      },
      DescribeAccountAssignmentCreationStatus: (input) => ({
        AccountAssignmentCreationStatus: status(this.operationStatus(input, 'AccountAssignmentCreationRequestId', 'create')),
      }),
      DescribeAccountAssignmentDeletionStatus: (input) => ({
        AccountAssignmentDeletionStatus: status(this.operationStatus(input, 'AccountAssignmentDeletionRequestId', 'delete')),
      }),
      ListAccountAssignments: (input) => {
        const [arn] = this.permissionSet(input);
        const accountId = requireString(input, 'AccountId', PATTERNS.AccountId, 12);
        const prefix = `${arn}|${accountId}|`;
        const live = [...this.assignments].filter((a) => a.startsWith(prefix));
        const stale = [...this.ghosts.entries()].filter(([a, left]) => a.startsWith(prefix) && left > 0).map(([a]) => a);
        for (const ghost of stale) this.ghosts.set(ghost, this.ghosts.get(ghost)! - 1);
        const { items, NextToken } = pageOf([...live, ...stale], page(input));
        const AccountAssignments = items.map((a) => {
          const [, , PrincipalType, PrincipalId] = a.split('|');
          return { AccountId: accountId, PermissionSetArn: arn, PrincipalType, PrincipalId };
        });
        return { AccountAssignments, ...(NextToken ? { NextToken } : {}) };
      },
      GetInlinePolicyForPermissionSet: (input) => ({ InlinePolicy: this.permissionSet(input)[1].inlinePolicy }),
      PutInlinePolicyToPermissionSet: (input) => {
        const [arn, ps] = this.permissionSet(input);
        // eslint-disable-next-line no-control-regex -- the model's own pattern: tab, newline and carriage return are allowed.
        const policy = requireString(input, 'InlinePolicy', /^[\u0009\u000A\u000D\u0020-\u00FF]+$/, 32_768);
        let parsed: { Version?: unknown; Statement?: unknown };
        try {
          parsed = JSON.parse(policy) as typeof parsed;
        } catch {
          throw new AwsError('ValidationException', 'The policy document is not valid JSON.');
        }
        if (parsed.Version !== '2012-10-17' || !Array.isArray(parsed.Statement) || parsed.Statement.length === 0)
          throw new AwsError('ValidationException', 'The policy document needs Version 2012-10-17 and at least one statement.');
        if (JSON.stringify(parsed).length > MAX_INLINE_POLICY)
          throw new AwsError('ValidationException', `The inline policy exceeds the ${MAX_INLINE_POLICY}-character quota.`);
        this.exclusive(arn);
        ps.inlinePolicy = policy;
        return {};
      },
      DeleteInlinePolicyFromPermissionSet: (input) => {
        const [arn, ps] = this.permissionSet(input);
        this.exclusive(arn);
        ps.inlinePolicy = '';
        return {};
      },
      ProvisionPermissionSet: (input) => {
        const [arn] = this.permissionSet(input);
        const targetType = requireEnum(input, 'TargetType', ['AWS_ACCOUNT', 'ALL_PROVISIONED_ACCOUNTS']);
        const accountId = targetType === 'AWS_ACCOUNT' ? requireString(input, 'TargetId', PATTERNS.AccountId, 12) : undefined;
        this.exclusive(arn);
        return { PermissionSetProvisioningStatus: provisioning(this.start('provision', arn, accountId)) };
      },
      DescribePermissionSetProvisioningStatus: (input) => ({
        PermissionSetProvisioningStatus: provisioning(this.operationStatus(input, 'ProvisionPermissionSetRequestId', 'provision')),
      }),
    };
  }
}
