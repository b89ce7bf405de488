import { afterAll, beforeAll, expect, it } from 'vitest';
import { authenticateToken, createSession, createUser, findSession, issueApiToken } from '../auth/index.js';
import { getGrant, getRequest } from '../store/index.js';
import { alice, bob, startEngine, waitFor, type TestEngine } from '../../test/support/engine.js';
import { describeEachStore } from '../../test/support/stores.js';

const timeouts = { idleTimeoutMs: 3_600_000, absoluteTimeoutMs: 86_400_000 };

describeEachStore('deprovisioning', ({ store }) => {
  let t: TestEngine;
  beforeAll(async () => {
    t = await startEngine(store());
  });
  afterAll(async () => t?.stop());

  it('ends sessions and tokens, cancels pending requests and revokes grants in one step; re-enabling restores sign-in only', async () => {
    const db = store().db;
    const now = new Date();
    const user = await createUser(db, { name: 'alice', groups: ['sre', 'oncall'] }, now);
    const session = await createSession(db, { userId: user.id, method: 'password' }, timeouts, now);
    const token = await issueApiToken(db, { userId: user.id, name: 'laptop', scopes: ['request'], expiresInMs: 3_600_000 }, now);
    const { request: active } = await t.engine.submit({
      principal: alice,
      target: 'prod-db',
      entitlement: 'readonly',
      durationMs: 3_600_000,
      reason: 'debugging',
    });
    const grantId = active.grantId!;
    await waitFor(
      () => getGrant(db, grantId),
      (g) => g?.status === 'active',
    );
    const { request: pending } = await t.engine.submit({
      principal: alice,
      target: 'prod-db',
      entitlement: 'admin',
      durationMs: 3_600_000,
      reason: 'fix the broken index',
      ticket: 'OPS-1',
    });
    expect(pending.status).toBe('pending');

    const result = await t.engine.disableUser({ name: 'alice', actor: 'root', reason: 'left the company' });
    expect(result).toMatchObject({ changed: true, sessionsEnded: 1, apiAccessRevoked: 1, requestsCancelled: [pending.id], grantsRevoked: [grantId] });

    expect(await findSession(db, session.secret, timeouts)).toBeNull();
    expect(await authenticateToken(db, token.token)).toBeNull();
    expect((await getRequest(db, pending.id))!.status).toBe('cancelled');
    const revoked = await waitFor(
      () => getGrant(db, grantId),
      (g) => g?.status === 'revoked',
    );
    expect(revoked).toMatchObject({ endReason: 'revoked', endedBy: 'root' });
    expect(t.noop.hasAccess('prod-db', 'readonly', 'alice')).toBe(false);

    const rows = await db.selectFrom('audit_events').select('payload').orderBy('seq').execute();
    const events = rows.map((r) => JSON.parse(r.payload) as { action: string; subject?: string; data?: Record<string, unknown> });
    const disabled = events.find((e) => e.action === 'user.disabled' && e.subject === user.id);
    expect(disabled?.data).toMatchObject({ reason: 'left the company', grantsRevoked: [grantId], requestsCancelled: [pending.id] });
    const grantEvent = events.find((e) => e.action === 'grant.revoked' && e.subject === grantId);
    expect(grantEvent?.data).toMatchObject({ deprovisioning: true, reason: 'deprovisioning: left the company' });

    // Running it again changes nothing and sweeps nothing.
    const again = await t.engine.disableUser({ name: 'alice', actor: 'root', reason: 'left the company' });
    expect(again).toMatchObject({ changed: false, sessionsEnded: 0, apiAccessRevoked: 0, requestsCancelled: [], grantsRevoked: [] });

    const enabled = await t.engine.enableUser({ name: 'alice', actor: 'root', reason: 'came back' });
    expect(enabled.changed).toBe(true);
    // Sign-in works again (a new session is found); the old session and token stay dead.
    const fresh = await createSession(db, { userId: user.id, method: 'password' }, timeouts, new Date());
    expect(await findSession(db, fresh.secret, timeouts)).not.toBeNull();
    expect(await findSession(db, session.secret, timeouts)).toBeNull();
    expect(await authenticateToken(db, token.token)).toBeNull();
    expect((await getGrant(db, grantId))!.status).toBe('revoked');
  });

  it('a disabled person can no longer review', async () => {
    const db = store().db;
    await createUser(db, { name: 'bob', groups: ['sre-leads'] }, new Date());
    await createUser(db, { name: 'alice2', groups: ['sre'] }, new Date());
    const { request } = await t.engine.submit({
      principal: { id: 'alice2', kind: 'user', groups: ['sre'] },
      target: 'prod-db',
      entitlement: 'admin',
      durationMs: 3_600_000,
      reason: 'fix the broken index',
      ticket: 'OPS-2',
    });
    await t.engine.disableUser({ name: 'bob', actor: 'root', reason: 'suspended' });
    await expect(t.engine.review({ requestId: request.id, reviewer: bob, decision: 'approve', comment: '' })).rejects.toMatchObject({
      code: 'not_an_approver',
    });
    expect((await getRequest(db, request.id))!.status).toBe('pending');
  });

  it('refuses an unknown person and a missing reason, changing nothing', async () => {
    await expect(t.engine.disableUser({ name: 'nobody', actor: 'root', reason: 'x' })).rejects.toMatchObject({ code: 'not_found' });
    await expect(t.engine.disableUser({ name: 'alice', actor: 'root', reason: '   ' })).rejects.toMatchObject({ code: 'validation_failed' });
    await expect(t.engine.disableUser({ name: 'a'.repeat(500), actor: 'root', reason: 'x' })).rejects.toMatchObject({ code: 'validation_failed' });
  });
});
