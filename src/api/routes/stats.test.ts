import { sql } from 'kysely';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startTestApi, type CastMember, type TestApi } from '../../../test/support/api.js';
import { waitFor } from '../../../test/support/engine.js';
import { countAudit } from '../../../test/support/sign-in.js';
import { describeEachStore } from '../../../test/support/stores.js';

const HOUR = 3_600_000;

/**
 * GET /api/v1/stats against known history: requests and grants made through the API (so every row
 * is one the lifecycle wrote), then their times moved to known offsets before now with one
 * statement each (so intervals are exact). Offsets sit on half hours and the series' points on
 * whole hours back from "now", so the few seconds a run takes cannot move a grant across a point.
 *
 * alice, all in the last 24 hours unless said otherwise:
 *   A  prod-db/readonly, auto-approved; grant active since 5h30m ago
 *   B  prod-db/admin, approved by people 10m after asking (3h ago); grant active from 2h30m to 1h30m ago
 *   C  prod-db/admin, approved 25m after asking; grant active since 1h30m ago
 *   D  prod-db/admin, approved 60m after asking; grant active since it was provisioned (seconds ago)
 *   E  prod-db/admin, denied;  F  prod-db/admin, still pending;  G  prod-db/admin, cancelled
 *   H  flaky/readonly, auto-approved; released while the target refuses revokes: an overdue revocation
 *   I  prod-db/admin, 3 days ago, approved 5m after asking; grant active from then until 36h ago
 * mallory: one request, denied (no policy lets her ask).
 */
describeEachStore('dashboard statistics over HTTP', ({ store }) => {
  let api: TestApi;

  const ask = async (who: CastMember, payload: Record<string, string>) => {
    const response = await api.call(who, { method: 'POST', url: '/api/v1/requests', payload });
    expect(response.statusCode, response.body).toBe(201);
    return response.json().request as { id: string; status: string };
  };
  const askAdmin = (n: number) =>
    ask('alice', { target: 'prod-db', entitlement: 'admin', duration: '1h', reason: `stats seed ${n} for the dashboard`, ticket: `OPS-${n}` });
  const review = async (who: CastMember, id: string, decision: 'approve' | 'deny') => {
    const response = await api.call(who, { method: 'POST', url: `/api/v1/requests/${id}/reviews`, payload: { decision } });
    expect(response.statusCode, response.body).toBe(200);
  };
  const approvedByPeople = async (n: number) => {
    const request = await askAdmin(n);
    await review('bob', request.id, 'approve');
    await review('carol', request.id, 'approve');
    return request.id;
  };
  const grantOf = (requestId: string, status: string) =>
    waitFor(
      async () => (await api.call('root', { method: 'GET', url: `/api/v1/requests/${requestId}` })).json().grant as { id: string; status: string } | null,
      (g) => g?.status === status,
    );
  const release = async (grantId: string) => {
    expect((await api.call('alice', { method: 'POST', url: `/api/v1/grants/${grantId}/release`, payload: { reason: 'done' } })).statusCode).toBe(200);
  };
  /** Moves a request's times to fixed offsets before now (one statement, so their difference is exact). */
  const pinRequest = (id: string, createdAgo: string, decidedAgo: string) =>
    sql`UPDATE requests SET created_at = now() - ${createdAgo}::interval, decided_at = now() - ${decidedAgo}::interval WHERE id = ${id}`.execute(store().db);
  const pinGrant = (id: string, activatedAgo: string, endedAgo: string | null) =>
    sql`UPDATE grants SET activated_at = now() - ${activatedAgo}::interval, ended_at = now() - ${endedAgo}::interval WHERE id = ${id}`.execute(store().db);
  const stats = async (who: CastMember, query = '') => {
    const response = await api.call(who, { method: 'GET', url: `/api/v1/stats${query}` });
    expect(response.statusCode, response.body).toBe(200);
    return response.json();
  };

  beforeAll(async () => {
    api = await startTestApi(store());

    const a = await ask('alice', { target: 'prod-db', entitlement: 'readonly', duration: '1h', reason: 'auto' });
    await pinGrant((await grantOf(a.id, 'active'))!.id, '5 hours 30 minutes', null);

    const b = await approvedByPeople(1);
    const grantB = (await grantOf(b, 'active'))!;
    await release(grantB.id);
    await grantOf(b, 'revoked');
    await pinRequest(b, '3 hours', '2 hours 50 minutes');
    await pinGrant(grantB.id, '2 hours 30 minutes', '1 hour 30 minutes');

    const c = await approvedByPeople(2);
    await pinRequest(c, '2 hours', '1 hour 35 minutes');
    await pinGrant((await grantOf(c, 'active'))!.id, '1 hour 30 minutes', null);

    const d = await approvedByPeople(3);
    await pinRequest(d, '4 hours', '3 hours');
    await grantOf(d, 'active');

    const e = await askAdmin(4);
    await review('bob', e.id, 'deny');
    await askAdmin(5);
    const g = await askAdmin(6);
    expect((await api.call('alice', { method: 'POST', url: `/api/v1/requests/${g.id}/cancel` })).statusCode).toBe(200);

    const h = await ask('alice', { target: 'flaky', entitlement: 'readonly', duration: '1h', reason: 'overdue' });
    const grantH = (await grantOf(h.id, 'active'))!;
    api.t.noop.behaviour('flaky').failRevoke = true;
    await release(grantH.id);

    const i = await approvedByPeople(7);
    const grantI = (await grantOf(i, 'active'))!;
    await release(grantI.id);
    await grantOf(i, 'revoked');
    await pinRequest(i, '3 days', '3 days -5 minutes');
    await pinGrant(grantI.id, '3 days -6 minutes', '36 hours');

    expect((await ask('mallory', { target: 'prod-db', entitlement: 'readonly', duration: '1h', reason: 'no policy for me' })).status).toBe('denied');
    // Overdue once revoking has lasted past the grace second (the metric's definition).
    await waitFor(
      () => api.t.engine.overdueRevocations(),
      (n) => n >= 1,
      15_000,
    );
  }, 120_000);

  afterAll(async () => {
    if (api) api.t.noop.behaviour('flaky').failRevoke = false;
    await api?.stop();
  });

  it('counts everything in the last 24 hours for an admin: hourly active grants, outcomes, median, overdue', async () => {
    const body = await stats('root');
    expect(body).toMatchObject({ scope: 'all', stepMs: HOUR, overdueRevocations: 1, medianTimeToApproveMs: 25 * 60_000, approvalsByPeople: 3 });
    expect(Date.parse(body.until) - Date.parse(body.since)).toBe(24 * HOUR);
    // Auto-approved requests (A, H: decided at once) would pull the median down; they are not in it.
    expect(body.requestsByOutcome).toEqual({ approved: 5, denied: 2, pending: 1, cancelled: 1, timed_out: 0 });
    // 25 points, an hour apart, from `since` to `until`. Oldest first: nothing until 5h ago (A),
    // B from 2h30m to 1h30m ago covers the point 2h ago, C from 1h30m ago, D only now.
    expect(body.activeOverTime).toHaveLength(25);
    expect(body.activeOverTime[0].at).toBe(body.since);
    expect(body.activeOverTime.at(-1).at).toBe(body.until);
    expect(body.activeOverTime.map((p: { active: number }) => p.active)).toEqual([...Array(19).fill(0), 1, 1, 1, 2, 2, 3]);
  });

  it('over 7 days: daily points, and the older request and grant count too', async () => {
    const body = await stats('auditor', '?since=7d');
    expect(body).toMatchObject({ scope: 'all', stepMs: 24 * HOUR, overdueRevocations: 1, approvalsByPeople: 4 });
    // 5m, 10m, 25m, 60m: the median of an even count is the mean of the middle two.
    expect(body.medianTimeToApproveMs).toBe(17.5 * 60_000);
    expect(body.requestsByOutcome).toEqual({ approved: 6, denied: 2, pending: 1, cancelled: 1, timed_out: 0 });
    // 8 points a day apart: I was active 2 days ago; A, C and D now.
    expect(body.activeOverTime.map((p: { active: number }) => p.active)).toEqual([0, 0, 0, 0, 0, 1, 0, 3]);
  });

  it('gives anyone else figures over their own requests and grants only, without the overdue count', async () => {
    const alice = await stats('alice');
    expect(alice).toMatchObject({ scope: 'mine', overdueRevocations: null, medianTimeToApproveMs: 25 * 60_000, approvalsByPeople: 3 });
    expect(alice.requestsByOutcome).toEqual({ approved: 5, denied: 1, pending: 1, cancelled: 1, timed_out: 0 });
    expect(alice.activeOverTime.at(-1).active).toBe(3);

    const mallory = await stats('mallory', '?since=30d');
    expect(mallory).toMatchObject({ scope: 'mine', stepMs: 24 * HOUR, overdueRevocations: null, medianTimeToApproveMs: null, approvalsByPeople: 0 });
    expect(mallory.requestsByOutcome).toEqual({ approved: 0, denied: 1, pending: 0, cancelled: 0, timed_out: 0 });
    expect(mallory.activeOverTime).toHaveLength(31);
    expect(mallory.activeOverTime.every((p: { active: number }) => p.active === 0)).toBe(true);
  });

  it('refuses callers without credentials (401, audited) or without the read scope (403)', async () => {
    const before = await countAudit(store(), 'auth.refused');
    const anonymous = await api.call(null, { method: 'GET', url: '/api/v1/stats' });
    expect(anonymous.statusCode).toBe(401);
    expect(anonymous.json()).toMatchObject({ code: 'unauthenticated' });
    const requestOnly = await api.tokenWith('alice', ['request']);
    const scoped = await api.app.inject({ method: 'GET', url: '/api/v1/stats', headers: { authorization: `Bearer ${requestOnly}` } });
    expect(scoped.statusCode).toBe(403);
    expect(scoped.json()).toMatchObject({ code: 'forbidden' });
    expect((await countAudit(store(), 'auth.refused')) - before).toBe(2);
  });

  it('refuses a window that is not a duration from 1h to 90d, or other parameters, as problem documents', async () => {
    for (const since of ['banana', '91d', '30m', '1y', '-1h', `${'9'.repeat(30)}d`]) {
      const response = await api.call('root', { method: 'GET', url: `/api/v1/stats?since=${encodeURIComponent(since)}` });
      expect(response.statusCode, since).toBe(400);
      expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(response.json(), since).toMatchObject({ code: 'validation_failed' });
    }
    expect((await api.call('root', { method: 'GET', url: '/api/v1/stats?since=91d' })).json()).toMatchObject({
      where: 'since',
      hint: expect.stringContaining('90d'),
    });
    expect((await api.call('alice', { method: 'GET', url: '/api/v1/stats?scope=all' })).statusCode).toBe(400);
    expect((await stats('root', '?since=90d')).activeOverTime).toHaveLength(91);
  });
});
