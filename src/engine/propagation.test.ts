import { afterEach, beforeEach, expect, it } from 'vitest';
import { describeEachStore } from '../../test/support/stores.js';
import { alice, startEngine, waitFor, type TestEngine } from '../../test/support/engine.js';
import { getGrant, getRequest } from '../store/index.js';

/**
 * A cloud that accepted the removal but whose read-back still shows the access: the grant is
 * "revoked, propagation pending" (still `revoking`, live, and counted as overdue), revoke is
 * called again until the read-back confirms it, and only then is the grant revoked.
 */
describeEachStore('revocation pending propagation', ({ store }) => {
  let t: TestEngine;
  beforeEach(async () => {
    t = await startEngine(store());
  });
  afterEach(async () => {
    await t.stop();
  });

  const audit = async (subject: string) => {
    const rows = await store().db.selectFrom('audit_events').select('payload').orderBy('seq').execute();
    return rows.map((r) => JSON.parse(r.payload) as { action: string; subject?: string; data?: Record<string, unknown> }).filter((e) => e.subject === subject);
  };

  it('keeps the grant revoking until a revoke call confirms the removal, then revokes it', async () => {
    const { request } = await t.engine.submit({ principal: alice, target: 'prod-db', entitlement: 'readonly', reason: 'pending propagation' });
    const grantId = (await waitFor(
      () => getRequest(store().db, request.id),
      (r) => r?.grantId != null,
    ))!.grantId!;
    await waitFor(
      () => getGrant(store().db, grantId),
      (g) => g?.status === 'active',
    );

    // Pending until the test lets the read-back confirm it (a loaded machine must not miss the window).
    t.noop.behaviour('prod-db').pendingRevokes = 1_000_000;
    await t.engine.release({ grantId, by: alice });

    const pending = await waitFor(
      () => getGrant(store().db, grantId),
      (g) => g?.propagationPending != null,
    );
    expect(pending!.status).toBe('revoking');
    expect(pending!.propagationPending).toContain('read-back');
    // Rechecked, and still live, while the target cannot confirm.
    await waitFor(
      async () => t.noop.calls.filter((c) => c.op === 'revoke' && c.grantId === grantId).length,
      (n) => n >= 3,
    );
    expect((await getGrant(store().db, grantId))!.status).toBe('revoking');

    t.noop.behaviour('prod-db').pendingRevokes = 0;
    const done = await waitFor(
      () => getGrant(store().db, grantId),
      (g) => g?.status === 'revoked',
    );
    expect(done!.propagationPending).toBeNull();

    const events = await audit(grantId);
    const actions = events.map((e) => e.action);
    // Audited once when it became pending (not on every recheck), then the revoke itself.
    expect(actions.filter((a) => a === 'grant.revoke_pending')).toHaveLength(1);
    expect(actions.at(-1)).toBe('grant.revoked');
    expect(actions).not.toContain('grant.revoke_failed');
    expect(events.find((e) => e.action === 'grant.revoke_pending')!.data).toMatchObject({ reason: expect.stringContaining('read-back') });
  });
});
