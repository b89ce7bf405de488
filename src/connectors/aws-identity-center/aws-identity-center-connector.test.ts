import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { newId } from '../../domain/ids.js';
import { AwsError } from '../aws/testing/aws-fake.js';
import { connectorConformance } from '../testing/conformance.js';
import type { GrantSpec, RevokeResult } from '../types.js';
import { AwsIdentityCenterConnector } from './aws-identity-center-connector.js';
import { openIdentityCenterFake, type IdentityCenterFake } from './testing/index.js';

/**
 * Against the fake Identity Center (testing/identity-center-model.ts) through the official SDK:
 * SigV4, JSON 1.1, asynchronous assignments, conflicts, throttling and stale lists as injected.
 */
const ACCOUNT_A = '111122223333';
const ACCOUNT_B = '444455556666';
const signal = () => AbortSignal.timeout(20_000);

let ic: IdentityCenterFake;
let ps = '';
const connector = new AwsIdentityCenterConnector({ recheckInMs: 10 });

beforeAll(async () => {
  ic = await openIdentityCenterFake();
  ic.model.accounts.add(ACCOUNT_A).add(ACCOUNT_B);
  ps = ic.model.addPermissionSet('AdministratorAccess', 'PT4H');
});
afterAll(() => ic.close());

const target = (settings: Record<string, unknown> = {}, entitlement: Record<string, unknown> = {}) =>
  ic.target('aws', { admin: { permissionSet: ps, accounts: [ACCOUNT_A, ACCOUNT_B], ...entitlement } }, settings);

let users = 0;
function grant(overrides: Partial<GrantSpec> = {}, user = ic.model.addUser(`user-${++users}@example.com`)): GrantSpec {
  const t = overrides.target ?? target();
  return {
    grantId: newId('grant'),
    principalId: user.userName,
    target: t,
    entitlement: t.entitlements.get('admin')!,
    durationMs: 3_600_000,
    notAfter: new Date(Date.now() + 3_600_000),
    parameters: {},
    ...overrides,
  };
}

const userIdOf = (principalId: string) => [...ic.model.users.values()].find((u) => u.userName === principalId)!.userId;
const assignedEverywhere = (g: GrantSpec) => [ACCOUNT_A, ACCOUNT_B].every((a) => ic.model.hasAssignment(ps, a, userIdOf(g.principalId)));
const assignedAnywhere = (g: GrantSpec) => [ACCOUNT_A, ACCOUNT_B].some((a) => ic.model.hasAssignment(ps, a, userIdOf(g.principalId)));

/** Calls revoke as the engine does: again after recheckInMs while propagation is pending. */
async function revokeUntilConfirmed(g: GrantSpec, handle: Record<string, unknown> | null): Promise<number> {
  for (let calls = 1; ; calls++) {
    const result = (await connector.revoke(g, handle, signal())) as RevokeResult | undefined;
    if (!result?.propagationPending) return calls;
    await new Promise((r) => setTimeout(r, result.recheckInMs));
  }
}

connectorConformance({
  name: 'aws-identity-center (fake Identity Center)',
  connector: () => connector,
  grant: (overrides) => grant(overrides),
  hasAccess: async (g) => assignedEverywhere(g),
  createUnmanaged: async () => {
    const outsider = ic.model.addUser(`outsider-${++users}`);
    ic.model.assign(ps, ACCOUNT_A, outsider.userId);
    return outsider.userName;
  },
});

describe('aws-identity-center connector', () => {
  const removers: (() => void)[] = [];
  afterEach(() => {
    removers.splice(0).forEach((remove) => remove());
    ic.model.duplicateCreate = 'succeed';
    ic.model.deleteMissing = 'not-found';
    ic.model.staleListsAfterDelete = 0;
    ic.model.denied.clear();
  });

  it('keys access by permission set, accounts and user, so two grants of it share one assignment', () => {
    const user = ic.model.addUser('shared@example.com');
    const first = grant({}, user);
    const second = grant({}, user);
    expect(connector.accessKey(first)).toBe(connector.accessKey(second));
    expect(connector.accessKey(grant())).not.toBe(connector.accessKey(first));
  });

  it('fails a provision whose assignment FAILS at AWS instead of calling it active (AWS TEAM #522)', async () => {
    const t = ic.target('aws', { admin: { permissionSet: ps, accounts: [ACCOUNT_A, '999988887777'] } });
    const g = grant({ target: t, entitlement: t.entitlements.get('admin')! });
    await expect(connector.provision(g, signal())).rejects.toMatchObject({
      code: 'connector_failed',
      message: expect.stringMatching(/on account 999988887777 .* FAILED: .*999988887777/),
      details: { hint: expect.stringContaining('belongs to the organization') },
    });
    await connector.revoke(g, null, signal()); // what the engine does after giving up: cleans up account A
    expect(ic.model.hasAssignment(ps, ACCOUNT_A, userIdOf(g.principalId))).toBe(false);
  });

  it('names the attribute when the principal has no Identity Store user', async () => {
    const g = { ...grant(), principalId: 'nobody@example.com' };
    await expect(connector.provision(g, signal())).rejects.toThrow('no Identity Store user has the user name "nobody@example.com"');
    await connector.revoke(g, null, signal()); // nothing to revoke for a user that does not exist
  });

  it('matches principals by email or external id, and maps assignments back to them', async () => {
    const user = ic.model.addUser('frank', ['frank@example.com'], [{ issuer: 'https://idp.example.com', id: 'F-42' }]);
    for (const [settings, principalId] of [
      [{ userAttribute: 'email' }, 'frank@example.com'],
      [{ userAttribute: 'externalId', externalIdIssuer: 'https://idp.example.com' }, 'F-42'],
    ] as const) {
      const t = target(settings);
      const g = { ...grant({ target: t, entitlement: t.entitlements.get('admin')! }), principalId };
      const { handle } = await connector.provision(g, signal());
      expect(handle).toMatchObject({ userId: user.userId, accounts: [ACCOUNT_A, ACCOUNT_B] });
      const listed = await connector.listAccess(t, signal());
      expect(listed).toContainEqual({ account: `${ACCOUNT_A}/${user.userId}`, principalId, entitlement: 'admin', grantId: null });
      await revokeUntilConfirmed(g, handle);
      expect(ic.model.hasAssignment(ps, ACCOUNT_A, user.userId)).toBe(false);
    }
  });

  it('remembers a user id for userCacheMs, and looks it up again after', async () => {
    let clock = Date.now();
    const cached = new AwsIdentityCenterConnector({ now: () => clock });
    const g = grant();
    const lookups = () =>
      ic.fake.calls.filter(
        (c) =>
          c.operation === 'GetUserId' &&
          (c.input as { AlternateIdentifier?: { UniqueAttribute?: { AttributeValue?: string } } }).AlternateIdentifier?.UniqueAttribute?.AttributeValue ===
            g.principalId,
      ).length;
    await cached.provision(g, signal());
    await cached.provision(g, signal());
    expect(lookups()).toBe(1);
    clock += 60_001;
    await cached.revoke(g, null, signal());
    expect(lookups()).toBe(2);
  });

  it('retries ConflictException with backoff until the other operation is done', async () => {
    let conflicts = 0;
    removers.push(
      ic.fake.inject((call) =>
        call.operation === 'CreateAccountAssignment' && conflicts++ < 3
          ? new AwsError('ConflictException', 'There is a conflicting operation in process.')
          : undefined,
      ),
    );
    const g = grant();
    await connector.provision(g, signal());
    expect(conflicts).toBe(5); // three refused, then one create per account
    expect(assignedEverywhere(g)).toBe(true);
  });

  it('provisions access that already exists, whether AWS accepts the duplicate or calls it a conflict', async () => {
    for (const mode of ['succeed', 'conflict'] as const) {
      ic.model.duplicateCreate = mode;
      const g = grant();
      await connector.provision(g, signal());
      const again = await connector.provision({ ...g, grantId: newId('grant') }, signal());
      expect(assignedEverywhere(g)).toBe(true);
      await revokeUntilConfirmed(g, again.handle);
    }
  });

  it('reports propagation pending while the list is stale, and confirms once it is not', async () => {
    const g = grant();
    const { handle } = await connector.provision(g, signal());
    ic.model.staleListsAfterDelete = 2;
    const first = (await connector.revoke(g, handle, signal())) as RevokeResult;
    expect(first).toEqual({ propagationPending: expect.stringContaining('still lists user'), recheckInMs: 10 });
    expect(assignedAnywhere(g)).toBe(false); // the deletion itself succeeded
    expect(await revokeUntilConfirmed(g, handle)).toBeGreaterThanOrEqual(1);
  });

  it('revokes a deletion AWS answers with a FAILED status because nothing was there', async () => {
    ic.model.deleteMissing = 'fails-async';
    await connector.revoke(grant(), null, signal());
  });

  it('converges under throttling, 5xx, conflicts and stale lists together', async () => {
    const grants = await Promise.all(
      Array.from({ length: 4 }, async () => {
        const g = grant();
        return { g, handle: (await connector.provision(g, signal())).handle };
      }),
    );
    ic.model.staleListsAfterDelete = 1;
    let n = 0;
    removers.push(
      ic.fake.inject((call) => {
        n++;
        if (n % 5 === 0) return new AwsError('ThrottlingException', 'Rate exceeded');
        if (n % 7 === 0) return new AwsError('InternalServerException', 'internal error', 500);
        if (n % 11 === 0 && call.operation === 'DeleteAccountAssignment')
          return new AwsError('ConflictException', 'There is a conflicting operation in process.');
        return undefined;
      }),
    );
    const outcomes = await Promise.allSettled(
      grants.map(async ({ g, handle }) => {
        for (let attempt = 1; ; attempt++) {
          try {
            return await revokeUntilConfirmed(g, handle);
          } catch (error) {
            if (attempt >= 5) throw error; // the engine would retry forever; five rounds must be plenty here
          }
        }
      }),
    );
    expect(outcomes.every((o) => o.status === 'fulfilled')).toBe(true);
    expect(grants.some(({ g }) => assignedAnywhere(g))).toBe(false);
    expect(n).toBeGreaterThan(20);
  });

  it('says so when AWS keeps throttling past maxAttempts', async () => {
    removers.push(ic.fake.inject((call) => (call.operation === 'GetUserId' ? new AwsError('ThrottlingException', 'Rate exceeded') : undefined)));
    await expect(connector.provision(grant(), signal())).rejects.toThrow(/identitystore:GetUserId was still throttled after 3 attempts/);
  });

  it('honours its deadline while polling', async () => {
    ic.model.operationMs = 60_000;
    try {
      const started = Date.now();
      await expect(connector.provision(grant(), AbortSignal.timeout(300))).rejects.toMatchObject({ code: 'connector_timeout' });
      expect(Date.now() - started).toBeLessThan(5_000);
    } finally {
      ic.model.operationMs = 20;
      ic.model.finishAll();
    }
  });

  it('checkTarget passes with every permission and names each one that is missing', async () => {
    const t = target({ revokeSessions: true });
    await connector.checkTarget(t, signal());
    for (const action of [
      'sso:DescribePermissionSet',
      'sso:ListAccountAssignments',
      'sso:DescribeAccountAssignmentCreationStatus',
      'sso:DescribeAccountAssignmentDeletionStatus',
      'sso:DeleteAccountAssignment',
      'identitystore:ListUsers',
      'identitystore:DescribeUser',
      'identitystore:GetUserId',
      'sso:GetInlinePolicyForPermissionSet',
      'sso:DescribePermissionSetProvisioningStatus',
    ]) {
      ic.model.denied.clear();
      ic.model.denied.add(action);
      await expect(connector.checkTarget(t, signal()), action).rejects.toMatchObject({
        code: 'connector_failed',
        message: expect.stringContaining(`lacks ${action}`),
        details: { missingAction: action, hint: expect.stringContaining(`allow ${action}`) },
      });
    }
  });

  it('refuses to remove an entry that listAccess could not have reported', async () => {
    const t = target();
    await expect(
      connector.removeAccess(t, { account: '999999999999/x', principalId: 'x', entitlement: 'admin', grantId: null }, signal()),
    ).rejects.toMatchObject({
      code: 'validation_failed',
    });
  });
});
