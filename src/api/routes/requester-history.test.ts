import { afterAll, beforeAll, expect, it } from 'vitest';
import { startTestApi, type TestApi } from '../../../test/support/api.js';
import { waitFor } from '../../../test/support/engine.js';
import { countAudit } from '../../../test/support/sign-in.js';
import { describeEachStore } from '../../../test/support/stores.js';

/**
 * GET /api/v1/requests/:id/requester-history: what the people deciding see of the requester's
 * past (the approvals inbox shows it on every card).
 */
describeEachStore("a requester's history for the people deciding", ({ store }) => {
  let api: TestApi;
  let underReview = '';
  const url = (query = '') => `/api/v1/requests/${underReview}/requester-history${query}`;
  const admin = (reason: string, ticket: string) => ({ target: 'prod-db', entitlement: 'admin', duration: '30m', reason, ticket });

  beforeAll(async () => {
    api = await startTestApi(store());
    const post = async (payload: object, path = '/api/v1/requests') => (await api.call('alice', { method: 'POST', url: path, payload })).json().request;
    // alice's past: an auto-approved grant an admin revoked, a request she cancelled, one denied, one break-glass.
    const readonly = await post({ target: 'prod-db', entitlement: 'readonly', duration: '1h', reason: 'INC-7 a secret reason' });
    const grant = await waitFor(
      async () => (await api.call('alice', { method: 'GET', url: `/api/v1/requests/${readonly.id}` })).json().grant,
      (g) => g?.status === 'active',
    );
    expect(
      (await api.call('root', { method: 'POST', url: `/api/v1/grants/${grant.id}/revoke`, payload: { reason: 'not during the freeze' } })).statusCode,
    ).toBe(200);
    const cancelled = await post(admin('changed my mind about this', 'OPS-1'));
    expect((await api.call('alice', { method: 'POST', url: `/api/v1/requests/${cancelled.id}/cancel` })).statusCode).toBe(200);
    const denied = await post(admin('drop the old partitions', 'OPS-2'));
    expect(
      (await api.call('bob', { method: 'POST', url: `/api/v1/requests/${denied.id}/reviews`, payload: { decision: 'deny', comment: 'not today' } })).statusCode,
    ).toBe(200);
    await post({ target: 'prod-db', entitlement: 'admin', duration: '10m', reason: 'the primary is down, failing over now' }, '/api/v1/break-glass');
    underReview = (await post(admin('rotate the replication slot', 'OPS-3'))).id;
  });
  afterAll(async () => {
    await api.stop();
  });

  it("shows an approver the requester's outcomes and latest requests, without their reasons", async () => {
    const res = await api.call('bob', { method: 'GET', url: url() });
    expect(res.statusCode).toBe(200);
    const history = res.json();
    expect(history.principalId).toBe('alice');
    // The request under review is counted too (pending): the summary is the same for all of alice's requests.
    expect(history.counts).toEqual({ pending: 1, approved: 2, denied: 1, cancelled: 1, timed_out: 0, breakGlass: 1, revokedByAdmin: 1 });
    expect(history.recent[0].id).toBe(underReview);
    expect(history.recent.map((r: { kind: string; entitlement: string; status: string }) => `${r.kind} ${r.entitlement} ${r.status}`)).toEqual([
      'access admin pending',
      'break_glass admin approved',
      'access admin denied',
      'access admin cancelled',
      'access readonly approved',
    ]);
    expect(history.recent.at(-1)).toMatchObject({ durationMs: 3_600_000, grantEndReason: 'revoked' });
    expect(res.body).not.toContain('secret reason');
    expect(res.body).not.toContain('OPS-');
    expect((await api.call('bob', { method: 'GET', url: url('?limit=2') })).json().recent).toHaveLength(2);
  });

  it('is there for every approver stage, auditors, admins and the requester', async () => {
    for (const who of ['carol', 'auditor', 'root', 'alice'] as const) {
      expect((await api.call(who, { method: 'GET', url: url() })).statusCode, who).toBe(200);
    }
  });

  it('is "not found" for anyone who may not see the request, and the attempt is recorded', async () => {
    const before = await countAudit(store(), 'authz.refused');
    const res = await api.call('mallory', { method: 'GET', url: url() });
    expect(res.statusCode).toBe(404);
    expect(res.json()).toMatchObject({ code: 'not_found' });
    expect((await countAudit(store(), 'authz.refused')) - before).toBe(1);
    expect((await api.call(null, { method: 'GET', url: url() })).statusCode).toBe(401);
  });

  it('refuses a window past a year or that is not a duration, saying where', async () => {
    for (const [since, message] of [
      ['366d', /365 days/],
      ['400d', /366d/],
      ['forever', /since/],
    ] as const) {
      const res = await api.call('bob', { method: 'GET', url: url(`?since=${since}`) });
      expect(res.statusCode, since).toBe(400);
      expect(res.json()).toMatchObject({ code: 'validation_failed' });
      expect(JSON.stringify(res.json())).toMatch(message);
    }
    const window = (await api.call('bob', { method: 'GET', url: url('?since=1m') })).json();
    expect(Date.now() - Date.parse(window.since)).toBeLessThan(120_000);
  });
});
