import { afterEach, beforeEach, expect, it } from 'vitest';
import { describeEachStore } from '../../test/support/stores.js';
import { alice, bob, carol, mallory, root, startEngine, waitFor, type TestEngine } from '../../test/support/engine.js';
import { getGrant, getRequest, listGrants } from '../store/index.js';
import { isLapseError } from '../domain/errors.js';

describeEachStore('lifecycle engine', ({ store }) => {
  let t: TestEngine;
  beforeEach(async () => {
    t = await startEngine(store());
  });
  afterEach(async () => {
    await t.stop();
  });

  const grantOf = async (requestId: string) => {
    const request = await getRequest(store().db, requestId);
    return request?.grantId ? getGrant(store().db, request.grantId) : undefined;
  };
  const actions = async (subject: string) => {
    const rows = await store().db.selectFrom('audit_events').select('payload').orderBy('seq').execute();
    return rows
      .map((r) => JSON.parse(r.payload) as { action: string; subject?: string })
      .filter((e) => e.subject === subject)
      .map((e) => e.action);
  };

  it('activates an auto-approved request and revokes it at expiry, counting from activation', async () => {
    const { request } = await t.engine.submit({ principal: alice, target: 'prod-db', entitlement: 'readonly', durationMs: 1_500, reason: 'look at INC-1' });
    expect(request.status).toBe('approved');
    // Wait on activatedAt, not on status: a loaded machine may see the grant only after it ended.
    const active = await waitFor(
      () => grantOf(request.id),
      (g) => g?.activatedAt != null,
    );
    expect(active!.expiresAt!.getTime() - active!.activatedAt!.getTime()).toBe(1_500);
    if (active!.status === 'active') {
      expect(t.noop.hasAccess('prod-db', 'readonly', 'alice')).toBe(true);
      expect((await t.engine.checkAccess('alice', 'prod-db', 'readonly')).allowed).toBe(true);
    }

    const revoked = await waitFor(
      () => grantOf(request.id),
      (g) => g?.status === 'revoked',
    );
    expect(revoked!.endReason).toBe('expired');
    expect(revoked!.endedAt!.getTime()).toBeGreaterThanOrEqual(revoked!.expiresAt!.getTime());
    expect(t.noop.hasAccess('prod-db', 'readonly', 'alice')).toBe(false);
    expect((await t.engine.checkAccess('alice', 'prod-db', 'readonly')).allowed).toBe(false);
    expect(await actions(active!.id)).toEqual(['grant.activated', 'grant.expired', 'grant.revoked']);
  });

  it('needs both approval stages, in order, before access', async () => {
    const { request } = await t.engine.submit({
      principal: alice,
      target: 'prod-db',
      entitlement: 'admin',
      reason: 'rotate replication slot',
      ticket: 'OPS-7',
    });
    expect(request.status).toBe('pending');
    await expect(t.engine.review({ requestId: request.id, reviewer: carol, decision: 'approve' })).rejects.toSatisfy((e) => isLapseError(e, 'not_an_approver'));
    const first = await t.engine.review({ requestId: request.id, reviewer: bob, decision: 'approve', comment: 'ok' });
    expect(first.effect).toBe('advanced');
    expect(await grantOf(request.id)).toBeUndefined();
    const second = await t.engine.review({ requestId: request.id, reviewer: carol, decision: 'approve' });
    expect(second.effect).toBe('approved');
    await waitFor(
      () => grantOf(request.id),
      (g) => g?.status === 'active',
    );
    expect(await actions(request.id)).toEqual(['request.pending', 'review.refused', 'review.approve', 'review.approve', 'request.approved']);
  });

  it('refuses self-approval and records the attempt', async () => {
    const selfish = { ...alice, groups: ['sre', 'sre-leads'] };
    const { request } = await t.engine.submit({
      principal: selfish,
      target: 'prod-db',
      entitlement: 'admin',
      reason: 'rotate replication slot',
      ticket: 'OPS-8',
    });
    await expect(t.engine.review({ requestId: request.id, reviewer: selfish, decision: 'approve' })).rejects.toSatisfy((e) => isLapseError(e, 'self_approval'));
    expect((await getRequest(store().db, request.id))!.status).toBe('pending');
    expect(await actions(request.id)).toContain('review.refused');
  });

  it('ends a request on the first deny, and reviews after that change nothing', async () => {
    const { request } = await t.engine.submit({
      principal: alice,
      target: 'prod-db',
      entitlement: 'admin',
      reason: 'rotate replication slot',
      ticket: 'OPS-9',
    });
    const denied = await t.engine.review({ requestId: request.id, reviewer: bob, decision: 'deny', comment: 'not now' });
    expect(denied.request.status).toBe('denied');
    await expect(t.engine.review({ requestId: request.id, reviewer: carol, decision: 'approve' })).rejects.toSatisfy((e) =>
      isLapseError(e, 'invalid_transition'),
    );
    expect(await grantOf(request.id)).toBeUndefined();
  });

  it('rejects bad input with a clear error and stores nothing', async () => {
    const before = await store()
      .db.selectFrom('requests')
      .select((eb) => eb.fn.countAll<string>().as('n'))
      .executeTakeFirstOrThrow();
    await expect(
      t.engine.submit({ principal: alice, target: 'prod-db', entitlement: 'admin', reason: 'rotate replication slot', ticket: 'JIRA-1' }),
    ).rejects.toThrow(/ticket/i);
    await expect(t.engine.submit({ principal: alice, target: 'prod-db', entitlement: 'readonly', durationMs: 9 * 3_600_000, reason: 'x' })).rejects.toSatisfy(
      (e) => isLapseError(e, 'validation_failed'),
    );
    await expect(t.engine.submit({ principal: alice, target: 'prod-db', entitlement: 'nope', reason: 'x' })).rejects.toSatisfy((e) =>
      isLapseError(e, 'not_found'),
    );
    await expect(t.engine.submit({ principal: alice, target: 'prod-db', entitlement: 'readonly', reason: 'x'.repeat(5000) })).rejects.toThrow(/reason/);
    const after = await store()
      .db.selectFrom('requests')
      .select((eb) => eb.fn.countAll<string>().as('n'))
      .executeTakeFirstOrThrow();
    expect(after.n).toBe(before.n);
  });

  it('records a request from someone not eligible as denied', async () => {
    const { request } = await t.engine.submit({ principal: mallory, target: 'prod-db', entitlement: 'readonly', reason: 'curious' });
    expect(request.status).toBe('denied');
    expect(request.grantId).toBeNull();
  });

  it('lets the requester cancel a pending request, and nobody else', async () => {
    const { request } = await t.engine.submit({
      principal: alice,
      target: 'prod-db',
      entitlement: 'admin',
      reason: 'rotate replication slot',
      ticket: 'OPS-10',
    });
    await expect(t.engine.cancel({ requestId: request.id, by: bob })).rejects.toSatisfy((e) => isLapseError(e, 'not_found'));
    const cancelled = await t.engine.cancel({ requestId: request.id, by: alice });
    expect(cancelled.status).toBe('cancelled');
  });

  it('extends an active grant without a gap', async () => {
    const { request } = await t.engine.submit({ principal: alice, target: 'prod-db', entitlement: 'readonly', durationMs: 5_000, reason: 'look at INC-2' });
    const active = await waitFor(
      () => grantOf(request.id),
      (g) => g?.status === 'active',
    );
    const extension = await t.engine.extend({ grantId: active!.id, by: alice, durationMs: 60_000, reason: 'still digging' });
    expect(extension.status).toBe('approved');
    const extended = await getGrant(store().db, active!.id);
    expect(extended!.expiresAt!.getTime()).toBe(active!.expiresAt!.getTime() + 60_000);
    // Past the original expiry, the grant is still active: no gap, no revoke at the target.
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, active!.expiresAt!.getTime() - Date.now()) + 300));
    expect((await getGrant(store().db, active!.id))!.status).toBe('active');
    expect(t.noop.calls.filter((c) => c.grantId === active!.id && c.op === 'revoke')).toEqual([]);
    // The target was told the new expiry (its own backstop, e.g. VALID UNTIL, moves too).
    const told = t.noop.calls.filter((c) => c.grantId === active!.id && c.op === 'extend');
    expect(told.map((c) => new Date(c.notAfter!).getTime())).toEqual([extended!.expiresAt!.getTime()]);
    expect(await actions(active!.id)).toContain('grant.target_extended');
    await expect(t.engine.extend({ grantId: active!.id, by: bob, durationMs: 1000, reason: 'x' })).rejects.toSatisfy((e) => isLapseError(e, 'not_found'));
  });

  it('keeps access that another active grant still covers', async () => {
    const overlap = { ...alice, id: 'alice-overlap' };
    const one = await t.engine.submit({ principal: overlap, target: 'prod-db', entitlement: 'readonly', durationMs: 3_600_000, reason: 'first' });
    const two = await t.engine.submit({ principal: overlap, target: 'prod-db', entitlement: 'readonly', durationMs: 3_600_000, reason: 'second' });
    const g1 = await waitFor(
      () => grantOf(one.request.id),
      (g) => g?.status === 'active',
    );
    const g2 = await waitFor(
      () => grantOf(two.request.id),
      (g) => g?.status === 'active',
    );
    await t.engine.release({ grantId: g1!.id, by: overlap });
    const released = await waitFor(
      () => getGrant(store().db, g1!.id),
      (g) => g?.status === 'revoked',
    );
    expect(released!.coveredBy).toBe(g2!.id);
    expect(t.noop.hasAccess('prod-db', 'readonly', overlap.id)).toBe(true);
    await t.engine.release({ grantId: g2!.id, by: overlap });
    await waitFor(
      () => getGrant(store().db, g2!.id),
      (g) => g?.status === 'revoked',
    );
    expect(t.noop.hasAccess('prod-db', 'readonly', overlap.id)).toBe(false);
    expect(t.noop.calls.filter((c) => c.op === 'revoke' && (c.grantId === g1!.id || c.grantId === g2!.id)).length).toBe(1);
  });

  it('retries a failing revoke without giving up, counts it overdue, and finishes when the target recovers', async () => {
    const { request } = await t.engine.submit({ principal: alice, target: 'flaky', entitlement: 'readonly', durationMs: 3_600_000, reason: 'flaky' });
    const active = await waitFor(
      () => grantOf(request.id),
      (g) => g?.status === 'active',
    );
    t.noop.behaviour('flaky').failRevoke = true;
    await t.engine.release({ grantId: active!.id, by: alice });
    const stuck = await waitFor(
      () => getGrant(store().db, active!.id),
      (g) => (g?.revokeAttempts ?? 0) >= 4,
      15_000,
    );
    expect(stuck!.status).toBe('revoking');
    expect(stuck!.lastError).toMatch(/told to fail revoke/);
    await waitFor(
      () => t.engine.stats(),
      (s) => s.overdueRevocations >= 1,
      5_000,
    );
    t.noop.behaviour('flaky').failRevoke = false;
    await waitFor(
      () => getGrant(store().db, active!.id),
      (g) => g?.status === 'revoked',
      5_000,
    );
    expect(t.noop.hasAccess('flaky', 'readonly', 'alice')).toBe(false);
  });

  it('gives up a provision that keeps failing, cleans up, and marks the grant failed', async () => {
    t.noop.behaviour('flaky').failProvision = true;
    const { request } = await t.engine.submit({ principal: alice, target: 'flaky', entitlement: 'readonly', reason: 'flaky provision' });
    const failed = await waitFor(
      () => grantOf(request.id),
      (g) => g?.status === 'failed',
      15_000,
    );
    t.noop.behaviour('flaky').failProvision = false;
    expect(failed!.provisionAttempts).toBe(3);
    expect(failed!.endReason).toBe('provision_failed');
    expect(t.noop.calls.some((c) => c.op === 'revoke' && c.grantId === failed!.id)).toBe(true);
  });

  it('grants break-glass at once, loudly, and requires a review by someone else', async () => {
    const request = await t.engine.breakGlass({
      principal: alice,
      target: 'prod-db',
      entitlement: 'admin',
      durationMs: 60_000,
      reason: 'primary is down, failover stuck',
    });
    await waitFor(
      () => grantOf(request.id),
      (g) => g?.status === 'active',
    );
    const log = await actions(request.id);
    expect(log).toContain('break_glass.activated');
    await expect(
      t.engine.breakGlass({ principal: mallory, target: 'prod-db', entitlement: 'admin', durationMs: 60_000, reason: 'primary is down, failover stuck' }),
    ).rejects.toSatisfy((e) => isLapseError(e, 'forbidden'));
    await expect(t.engine.breakGlass({ principal: alice, target: 'prod-db', entitlement: 'admin', durationMs: 60_000, reason: 'down' })).rejects.toThrow(
      /at least 20 characters/,
    );
    await expect(t.engine.reviewBreakGlass({ requestId: request.id, reviewer: bob })).rejects.toSatisfy((e) => isLapseError(e, 'forbidden'));
    await t.engine.reviewBreakGlass({ requestId: request.id, reviewer: root, comment: 'justified' });
    expect(await actions(request.id)).toContain('break_glass.reviewed');
    // Reviewed once: a second review is refused and changes nothing.
    await expect(t.engine.reviewBreakGlass({ requestId: request.id, reviewer: root, comment: 'again' })).rejects.toThrow(/already reviewed by root/);
    expect((await actions(request.id)).filter((a) => a === 'break_glass.reviewed')).toHaveLength(1);
  });

  it('never extends a break-glass grant, even under a policy that extends without approval', async () => {
    // prod-db/readonly is in sre-readonly (extension.requireApproval: false) and in breakGlass.entitlements.
    const request = await t.engine.breakGlass({
      principal: alice,
      target: 'prod-db',
      entitlement: 'readonly',
      durationMs: 60_000,
      reason: 'primary is down, failover stuck',
    });
    const active = await waitFor(
      () => grantOf(request.id),
      (g) => g?.status === 'active',
    );
    await expect(t.engine.extend({ grantId: active!.id, by: alice, durationMs: 3_600_000, reason: 'still down' })).rejects.toSatisfy(
      (e) => isLapseError(e, 'forbidden') && /break-glass/.test(e.message) && /break glass again/i.test(e.details.hint ?? ''),
    );
    const after = await getGrant(store().db, active!.id);
    expect(after!.expiresAt).toEqual(active!.expiresAt);
    expect(after!.extensions).toBe(0);
    expect(await store().db.selectFrom('requests').select('id').where('grant_id', '=', active!.id).where('kind', '=', 'extension').execute()).toEqual([]);
    expect(await actions(active!.id)).toContain('extension.refused');
  });

  it('lets only admins revoke and force-close', async () => {
    const { request } = await t.engine.submit({ principal: alice, target: 'flaky', entitlement: 'readonly', reason: 'for revoke' });
    const active = await waitFor(
      () => grantOf(request.id),
      (g) => g?.status === 'active',
    );
    await expect(t.engine.revoke({ grantId: active!.id, by: bob, reason: 'no' })).rejects.toSatisfy((e) => isLapseError(e, 'forbidden'));
    t.noop.behaviour('flaky').failRevoke = true;
    await t.engine.revoke({ grantId: active!.id, by: root, reason: 'suspicious activity' });
    await waitFor(
      () => getGrant(store().db, active!.id),
      (g) => (g?.revokeAttempts ?? 0) >= 2,
    );
    await t.engine.forceClose({ grantId: active!.id, by: root, reason: 'target decommissioned, access gone with it' });
    t.noop.behaviour('flaky').failRevoke = false;
    const closed = await getGrant(store().db, active!.id);
    expect(closed!.status).toBe('revoked');
    expect(await actions(active!.id)).toContain('grant.force_closed');
    const remaining = await store().db.selectFrom('jobs').select('kind').where('subject_id', '=', active!.id).execute();
    expect(remaining).toEqual([]);
  });

  it('lists grants for a principal', async () => {
    const grants = await listGrants(store().db, { principalId: 'alice' });
    expect(grants.length).toBeGreaterThan(0);
    expect(grants.every((g) => g.principalId === 'alice')).toBe(true);
  });
});
