import { DescribeUserCommand, GetUserIdCommand, IdentitystoreClient } from '@aws-sdk/client-identitystore';
import {
  CreateAccountAssignmentCommand,
  DeleteAccountAssignmentCommand,
  DescribeAccountAssignmentCreationStatusCommand,
  ListAccountAssignmentsCommand,
  PutInlinePolicyToPermissionSetCommand,
  SSOAdminClient,
} from '@aws-sdk/client-sso-admin';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openIdentityCenterFake, type IdentityCenterFake } from './index.js';

const ACCOUNT = '111122223333';

describe('the fake IAM Identity Center, through the official SDK', () => {
  let ic: IdentityCenterFake;
  let sso: SSOAdminClient;
  let ids: IdentitystoreClient;
  let ps = '';
  beforeAll(async () => {
    ic = await openIdentityCenterFake();
    ic.model.accounts.add(ACCOUNT);
    ps = ic.model.addPermissionSet('Admin', 'PT2H');
    const config = { region: 'eu-west-1', endpoint: ic.endpoint, credentials: ic.credentials, maxAttempts: 1 };
    sso = new SSOAdminClient(config);
    ids = new IdentitystoreClient(config);
  });
  afterAll(() => ic.close());

  const assignment = (principalId: string, targetId = ACCOUNT) => ({
    InstanceArn: ic.model.instanceArn,
    PermissionSetArn: ps,
    TargetId: targetId,
    TargetType: 'AWS_ACCOUNT' as const,
    PrincipalType: 'USER' as const,
    PrincipalId: principalId,
  });
  const creation = (requestId: string) =>
    sso.send(new DescribeAccountAssignmentCreationStatusCommand({ InstanceArn: ic.model.instanceArn, AccountAssignmentCreationRequestId: requestId }));
  const settled = async (requestId: string) => {
    for (;;) {
      const { AccountAssignmentCreationStatus: s } = await creation(requestId);
      if (s?.Status !== 'IN_PROGRESS') return s!;
      await new Promise((r) => setTimeout(r, 5));
    }
  };

  it('creates assignments asynchronously and refuses a second operation on the permission set meanwhile', async () => {
    const user = ic.model.addUser('alice');
    ic.model.operationMs = 300;
    const created = await sso.send(new CreateAccountAssignmentCommand(assignment(user.userId)));
    expect(created.AccountAssignmentCreationStatus?.Status).toBe('IN_PROGRESS');
    expect(ic.model.hasAssignment(ps, ACCOUNT, user.userId)).toBe(false);
    await expect(sso.send(new CreateAccountAssignmentCommand(assignment(ic.model.addUser('bob').userId)))).rejects.toMatchObject({
      name: 'ConflictException',
      message: 'There is a conflicting operation in process.',
    });
    ic.model.operationMs = 20;
    expect((await settled(created.AccountAssignmentCreationStatus!.RequestId!)).Status).toBe('SUCCEEDED');
    expect(ic.model.hasAssignment(ps, ACCOUNT, user.userId)).toBe(true);
    expect(ic.model.sessionWorks(ps, ACCOUNT, user.userId)).toBe(true);
  });

  it('fails an assignment to an account outside the organization or a missing user only in the status', async () => {
    const user = ic.model.addUser('carol');
    const missingAccount = await sso.send(new CreateAccountAssignmentCommand(assignment(user.userId, '999999999999')));
    expect(await settled(missingAccount.AccountAssignmentCreationStatus!.RequestId!)).toMatchObject({
      Status: 'FAILED',
      FailureReason: expect.stringContaining('999999999999'),
    });
    const ghost = await sso.send(new CreateAccountAssignmentCommand(assignment('9067a1b2c3-00000000-0000-0000-0000-000000000000')));
    expect((await settled(ghost.AccountAssignmentCreationStatus!.RequestId!)).Status).toBe('FAILED');
  });

  it('validates inputs as the SDK model constrains them', async () => {
    await expect(
      sso.send(new CreateAccountAssignmentCommand({ ...assignment('9067a1b2c3-00000000-0000-0000-0000-000000000000'), TargetId: '12345' })),
    ).rejects.toMatchObject({
      name: 'ValidationException',
      message: expect.stringContaining("at 'TargetId' failed to satisfy constraint"),
    });
    await expect(sso.send(new CreateAccountAssignmentCommand({ ...assignment('alice') }))).rejects.toMatchObject({ name: 'ValidationException' });
    await expect(
      sso.send(
        new CreateAccountAssignmentCommand({
          ...assignment('9067a1b2c3-00000000-0000-0000-0000-000000000000'),
          PermissionSetArn: 'arn:aws:sso:::permissionSet/ssoins-7223a0b1c2d3e4f5/ps-0000000000000000',
        }),
      ),
    ).rejects.toMatchObject({ name: 'ResourceNotFoundException' });
    await expect(creation('not-a-request-id')).rejects.toMatchObject({ name: 'ValidationException' });
    await expect(
      sso.send(
        new PutInlinePolicyToPermissionSetCommand({
          InstanceArn: ic.model.instanceArn,
          PermissionSetArn: ps,
          InlinePolicy: '{"Version":"2012-10-17","Statement":[]}',
        }),
      ),
    ).rejects.toMatchObject({ name: 'ValidationException' });
  });

  it('keeps listing a deleted assignment while the list is stale, and refuses to delete what is not there', async () => {
    const user = ic.model.addUser('dave');
    ic.model.assign(ps, ACCOUNT, user.userId);
    ic.model.staleListsAfterDelete = 1;
    try {
      await sso.send(new DeleteAccountAssignmentCommand(assignment(user.userId)));
      while (ic.model.inProgress() > 0) await new Promise((r) => setTimeout(r, 5));
      const list = () => sso.send(new ListAccountAssignmentsCommand({ InstanceArn: ic.model.instanceArn, AccountId: ACCOUNT, PermissionSetArn: ps }));
      expect((await list()).AccountAssignments?.map((a) => a.PrincipalId)).toContain(user.userId);
      expect((await list()).AccountAssignments?.map((a) => a.PrincipalId)).not.toContain(user.userId);
      await expect(sso.send(new DeleteAccountAssignmentCommand(assignment(user.userId)))).rejects.toMatchObject({ name: 'ResourceNotFoundException' });
    } finally {
      ic.model.staleListsAfterDelete = 0;
    }
  });

  it('pages ListAccountAssignments', async () => {
    const other = ic.model.addPermissionSet('Paged');
    const users = Array.from({ length: 5 }, (_, i) => ic.model.addUser(`paged-${i}`));
    for (const u of users) ic.model.assign(other, ACCOUNT, u.userId);
    const first = await sso.send(
      new ListAccountAssignmentsCommand({ InstanceArn: ic.model.instanceArn, AccountId: ACCOUNT, PermissionSetArn: other, MaxResults: 3 }),
    );
    expect(first.AccountAssignments).toHaveLength(3);
    const second = await sso.send(
      new ListAccountAssignmentsCommand({
        InstanceArn: ic.model.instanceArn,
        AccountId: ACCOUNT,
        PermissionSetArn: other,
        MaxResults: 3,
        NextToken: first.NextToken,
      }),
    );
    expect(second.AccountAssignments).toHaveLength(2);
    expect(second.NextToken).toBeUndefined();
  });

  it('finds users by userName, email or external id, and names a refused action', async () => {
    const user = ic.model.addUser('erin', ['erin@example.com'], [{ issuer: 'https://idp.example.com', id: 'E-1' }]);
    const byName = await ids.send(
      new GetUserIdCommand({
        IdentityStoreId: ic.model.identityStoreId,
        AlternateIdentifier: { UniqueAttribute: { AttributePath: 'userName', AttributeValue: 'erin' } },
      }),
    );
    expect(byName.UserId).toBe(user.userId);
    const byEmail = await ids.send(
      new GetUserIdCommand({
        IdentityStoreId: ic.model.identityStoreId,
        AlternateIdentifier: { UniqueAttribute: { AttributePath: 'emails.value', AttributeValue: 'erin@example.com' } },
      }),
    );
    expect(byEmail.UserId).toBe(user.userId);
    const byExternal = await ids.send(
      new GetUserIdCommand({
        IdentityStoreId: ic.model.identityStoreId,
        AlternateIdentifier: { ExternalId: { Issuer: 'https://idp.example.com', Id: 'E-1' } },
      }),
    );
    expect(byExternal.UserId).toBe(user.userId);
    await expect(
      ids.send(
        new GetUserIdCommand({
          IdentityStoreId: ic.model.identityStoreId,
          AlternateIdentifier: { UniqueAttribute: { AttributePath: 'userName', AttributeValue: 'nobody' } },
        }),
      ),
    ).rejects.toMatchObject({ name: 'ResourceNotFoundException' });
    ic.model.denied.add('identitystore:DescribeUser');
    try {
      await expect(ids.send(new DescribeUserCommand({ IdentityStoreId: ic.model.identityStoreId, UserId: user.userId }))).rejects.toMatchObject({
        name: 'AccessDeniedException',
        message: expect.stringContaining('identitystore:DescribeUser'),
      });
    } finally {
      ic.model.denied.clear();
    }
  });
});
