import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newId } from '../../domain/ids.js';
import type { GrantSpec } from '../types.js';
import { AwsIdentityCenterConnector } from './aws-identity-center-connector.js';
import { parsePolicy, readDeny, rewrite, sessionDurationMs, sidOf } from './session-deny.js';
import { openIdentityCenterFake, type IdentityCenterFake } from './testing/index.js';

const CUSTOMER = { Sid: 'CustomerReadOnly', Effect: 'Allow', Action: ['s3:GetObject'], Resource: '*' };
const NOW = new Date('2026-12-07T12:00:00Z');
const USER = '9067a1b2c3-11111111-2222-3333-4444-555555555555';

describe('session-deny statements', () => {
  it('adds, merges and lifts the user statement and keeps the customer statements as they are', () => {
    const base = parsePolicy(JSON.stringify({ Version: '2012-10-17', Statement: [CUSTOMER] }));
    const until = new Date('2026-12-07T16:00:00Z');
    const added = rewrite(base, USER, NOW, () => ({ userId: USER, accounts: ['111122223333'], until }));
    expect(added.changed).toBe(true);
    expect(added.policy.Statement[0]).toEqual(CUSTOMER);
    expect(added.policy.Statement[1]).toEqual({
      Sid: sidOf(USER),
      Effect: 'Deny',
      Action: '*',
      Resource: '*',
      Condition: {
        StringEquals: { 'identitystore:userId': USER, 'aws:PrincipalAccount': ['111122223333'] },
        DateLessThan: { 'aws:CurrentTime': '2026-12-07T16:00:00Z' },
      },
    });
    expect(sidOf(USER)).toMatch(/^[A-Za-z0-9]+$/);
    const same = rewrite(added.policy, USER, NOW, (current) => current);
    expect(same.changed).toBe(false);
    const lifted = rewrite(added.policy, USER, NOW, (current) => ({ ...current!, accounts: [] }));
    expect(lifted).toEqual({ policy: { Version: '2012-10-17', Statement: [CUSTOMER] }, changed: true });
  });

  it("drops Lapse statements that are past, whoever's they are, and never a customer's", () => {
    const other = '9067a1b2c3-99999999-2222-3333-4444-555555555555';
    const policy = rewrite(parsePolicy(undefined), other, NOW, () => ({
      userId: other,
      accounts: ['111122223333'],
      until: new Date('2026-12-07T11:59:00Z'),
    })).policy;
    policy.Statement.unshift({ ...CUSTOMER, Sid: 'LapseLookalikeButCustomer' });
    const next = rewrite(policy, USER, NOW, (current) => current);
    expect(next.changed).toBe(true);
    expect(next.policy.Statement).toEqual([{ ...CUSTOMER, Sid: 'LapseLookalikeButCustomer' }]);
    expect(readDeny({ Sid: 'LapseRevokedSessionsX', Effect: 'Deny' })).toBeNull();
  });

  it('reads session durations, assuming the 12-hour maximum when unknown', () => {
    expect(sessionDurationMs('PT4H')).toBe(4 * 3_600_000);
    expect(sessionDurationMs('PT1H30M')).toBe(5_400_000);
    expect(sessionDurationMs(undefined)).toBe(12 * 3_600_000);
    expect(sessionDurationMs('P1D')).toBe(12 * 3_600_000);
  });
});

describe('revokeSessions against the fake Identity Center', () => {
  const ACCOUNT_A = '111122223333';
  const ACCOUNT_B = '444455556666';
  let ic: IdentityCenterFake;
  let ps = '';
  const connector = new AwsIdentityCenterConnector({ recheckInMs: 10 });
  const signal = () => AbortSignal.timeout(20_000);

  beforeAll(async () => {
    ic = await openIdentityCenterFake();
    ic.model.accounts.add(ACCOUNT_A).add(ACCOUNT_B);
    ps = ic.model.addPermissionSet('PowerUser', 'PT2H', JSON.stringify({ Version: '2012-10-17', Statement: [CUSTOMER] }));
  });
  afterAll(() => ic.close());

  function grant(principalId: string, accounts: string[]): GrantSpec {
    const t = ic.target('aws', { power: { permissionSet: ps, accounts } }, { revokeSessions: true });
    return {
      grantId: newId('grant'),
      principalId,
      target: t,
      entitlement: t.entitlements.get('power')!,
      durationMs: 3_600_000,
      notAfter: new Date(Date.now() + 3_600_000),
      parameters: {},
    };
  }

  it("denies the revoked user's live sessions in the revoked accounts only, until they must have ended", async () => {
    const alice = ic.model.addUser('alice');
    const bob = ic.model.addUser('bob');
    ic.model.assign(ps, ACCOUNT_A, bob.userId); // keeps the role in account A alive
    ic.model.assign(ps, ACCOUNT_B, alice.userId); // alice's standing access elsewhere
    const g = grant('alice', [ACCOUNT_A]);
    const { handle } = await connector.provision(g, signal());
    expect(ic.model.sessionWorks(ps, ACCOUNT_A, alice.userId)).toBe(true);

    const started = Date.now();
    expect((await connector.revoke(g, handle, signal()))?.propagationPending).toMatch(/reads it back once more/);
    expect(await connector.revoke(g, handle, signal())).toBeUndefined();
    expect(ic.model.hasAssignment(ps, ACCOUNT_A, alice.userId)).toBe(false);
    expect(ic.model.sessionWorks(ps, ACCOUNT_A, alice.userId)).toBe(false);
    expect(ic.model.sessionWorks(ps, ACCOUNT_A, bob.userId)).toBe(true);
    expect(ic.model.sessionWorks(ps, ACCOUNT_B, alice.userId)).toBe(true);
    // Self-expiring: once every 2-hour session issued before the revoke has ended, the statement is harmless.
    expect(ic.model.sessionWorks(ps, ACCOUNT_A, alice.userId, new Date(started + 2 * 3_600_000 + 120_000))).toBe(true);
    expect(JSON.parse(ic.model.inlinePolicy(ps)).Statement[0]).toEqual(CUSTOMER);

    // A new grant lifts the deny for its accounts, so the fresh session works at once.
    await connector.provision(grant('alice', [ACCOUNT_A]), signal());
    expect(ic.model.sessionWorks(ps, ACCOUNT_A, alice.userId)).toBe(true);
    expect(JSON.parse(ic.model.inlinePolicy(ps)).Statement).toEqual([CUSTOMER]);
  });

  it('writes no deny for a grant that never had access (revoke without a handle, nothing assigned)', async () => {
    const erin = ic.model.addUser('erin');
    ic.model.assign(ps, ACCOUNT_B, erin.userId); // erin's standing access must not be cut off
    const before = ic.model.inlinePolicy(ps);
    await connector.revoke(grant('erin', [ACCOUNT_A]), null, signal());
    expect(ic.model.inlinePolicy(ps)).toBe(before);
    // …but a revoke without a handle that did remove an assignment (a crash after it was made) does deny.
    ic.model.assign(ps, ACCOUNT_A, ic.model.addUser('holder').userId);
    ic.model.assign(ps, ACCOUNT_A, erin.userId);
    await connector.revoke(grant('erin', [ACCOUNT_A]), null, signal());
    expect(ic.model.sessionWorks(ps, ACCOUNT_A, erin.userId)).toBe(false);
    expect(ic.model.sessionWorks(ps, ACCOUNT_B, erin.userId)).toBe(true);
  });

  it('revokes again without rewriting a statement that already lasts long enough', async () => {
    const carol = ic.model.addUser('carol');
    ic.model.assign(ps, ACCOUNT_A, ic.model.addUser('keeper').userId);
    const g = grant('carol', [ACCOUNT_A]);
    const { handle } = await connector.provision(g, signal());
    await connector.revoke(g, handle, signal());
    const written = ic.model.inlinePolicy(ps);
    await connector.revoke(g, handle, signal());
    expect(ic.model.inlinePolicy(ps)).toBe(written);
    expect(ic.model.sessionWorks(ps, ACCOUNT_A, carol.userId)).toBe(false);
  });

  it('refuses to grow the inline policy past 10,240 characters, after the assignment is gone', async () => {
    const dave = ic.model.addUser('dave');
    // Just under the limit on its own; Lapse's statement (about 300 characters) tips it over.
    const resources: string[] = [];
    const big = { Version: '2012-10-17', Statement: [{ ...CUSTOMER, Resource: resources }] };
    while (JSON.stringify(big).length < 10_100) resources.push(`arn:aws:s3:::bucket-${resources.length}/*`);
    expect(JSON.stringify(big).length).toBeLessThanOrEqual(10_240);
    const previous = ic.model.inlinePolicy(ps);
    ic.model.setInlinePolicy(ps, JSON.stringify(big));
    try {
      const g = grant('dave', [ACCOUNT_A]);
      const { handle } = await connector.provision(g, signal());
      await expect(connector.revoke(g, handle, signal())).rejects.toThrow(
        /would be \d+ characters with Lapse's 1 session-deny statement\(s\), over IAM's 10240/,
      );
      expect(ic.model.hasAssignment(ps, ACCOUNT_A, dave.userId)).toBe(false);
      expect(ic.model.inlinePolicy(ps)).toBe(JSON.stringify(big));
    } finally {
      ic.model.setInlinePolicy(ps, previous);
    }
  });

  it('loses no statement when revokes on one permission set race, in one process or across replicas', async () => {
    // Each replica rechecks after a pause longer than another's read-to-write gap, as in production.
    const recheckInMs = 250;
    const [one, replica] = [new AwsIdentityCenterConnector({ recheckInMs }), new AwsIdentityCenterConnector({ recheckInMs })];
    ic.model.assign(ps, ACCOUNT_A, ic.model.addUser('anchor').userId);
    const people = Array.from({ length: 5 }, (_, i) => ic.model.addUser(`crowd-${i}`));
    const grants = await Promise.all(people.map(async (p) => ({ g: grant(p.userName, [ACCOUNT_A]), p })));
    const handles: Record<string, unknown>[] = [];
    for (const { g } of grants) handles.push((await one.provision(g, signal())).handle);
    // As the engine does: a revoke that reports propagation pending is called again, after recheckInMs, until it does not.
    const revokeUntilSettled = async (c: AwsIdentityCenterConnector, g: GrantSpec, handle: Record<string, unknown>) => {
      for (let call = 1; call <= 10; call++) {
        const result = await c.revoke(g, handle, signal());
        if (!result?.propagationPending) return;
        await new Promise((resolve) => setTimeout(resolve, result.recheckInMs));
      }
      throw new Error(`revoke of ${g.principalId} still pending after 10 calls`);
    };
    await Promise.all(grants.map(({ g }, i) => revokeUntilSettled(i % 2 === 0 ? one : replica, g, handles[i]!)));
    for (const { p } of grants) expect(ic.model.sessionWorks(ps, ACCOUNT_A, p.userId)).toBe(false);
  });

  it('reads the statement back on the next call and writes it again when a concurrent writer replaced the policy', async () => {
    const frank = ic.model.addUser('frank');
    ic.model.assign(ps, ACCOUNT_A, ic.model.addUser('frank-keeper').userId);
    const g = grant('frank', [ACCOUNT_A]);
    const { handle } = await connector.provision(g, signal());
    const stale = ic.model.inlinePolicy(ps); // what another replica read before this revoke wrote
    const first = await connector.revoke(g, handle, signal());
    expect(first?.propagationPending).toMatch(/session-deny statement for user .* reads it back once more/);
    expect(first?.recheckInMs).toBe(10);
    ic.model.setInlinePolicy(ps, stale); // …and wrote after this revoke's read-back
    expect(ic.model.inlinePolicy(ps)).not.toContain(sidOf(frank.userId));
    const second = await connector.revoke(g, handle, signal());
    expect(second?.propagationPending).toMatch(/reads it back once more/);
    expect(ic.model.inlinePolicy(ps)).toContain(sidOf(frank.userId));
    expect(ic.model.sessionWorks(ps, ACCOUNT_A, frank.userId)).toBe(false);
    expect(await connector.revoke(g, handle, signal())).toBeUndefined();
  });
});
