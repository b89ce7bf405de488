import { afterAll, beforeAll, expect, it } from 'vitest';
import { setPassword } from '../../auth/index.js';
import { startTestApi, type TestApi } from '../../../test/support/api.js';
import { waitFor } from '../../../test/support/engine.js';
import { countAudit, PASSWORD } from '../../../test/support/sign-in.js';
import { describeEachStore } from '../../../test/support/stores.js';

/**
 * The negative cases of the request, grant, audit, config and event routes: every refusal is
 * refused (with the right code) and recorded in the audit log.
 */
describeEachStore('requests, grants, audit, config: refusals (security)', ({ store }) => {
  let api: TestApi;
  let pendingId = '';
  let grantId = '';
  beforeAll(async () => {
    api = await startTestApi(store());
    const pending = await api.call('alice', {
      method: 'POST',
      url: '/api/v1/requests',
      payload: { target: 'prod-db', entitlement: 'admin', duration: '1h', reason: 'rotate the replication slot', ticket: 'OPS-1' },
    });
    pendingId = pending.json().request.id;
    const auto = await api.call('alice', {
      method: 'POST',
      url: '/api/v1/requests',
      payload: { target: 'prod-db', entitlement: 'ephemeral', duration: '1h', reason: 'INC-9' },
    });
    const requestId = auto.json().request.id;
    const grant = await waitFor(
      async () => (await api.call('alice', { method: 'GET', url: `/api/v1/requests/${requestId}` })).json().grant,
      (g) => g?.status === 'active',
    );
    grantId = grant.id;
  });
  afterAll(async () => {
    await api.stop();
  });

  it('refuses every route without credentials, and records each refusal', async () => {
    const routes = [
      { method: 'GET', url: '/api/v1/catalogue' },
      { method: 'POST', url: '/api/v1/requests', payload: { target: 'prod-db', entitlement: 'readonly', reason: 'x' } },
      { method: 'GET', url: '/api/v1/requests' },
      { method: 'GET', url: `/api/v1/requests/${pendingId}` },
      { method: 'POST', url: `/api/v1/requests/${pendingId}/reviews`, payload: { decision: 'approve' } },
      { method: 'POST', url: `/api/v1/requests/${pendingId}/cancel` },
      { method: 'GET', url: '/api/v1/grants' },
      { method: 'GET', url: `/api/v1/grants/${grantId}` },
      { method: 'POST', url: `/api/v1/grants/${grantId}/release` },
      { method: 'POST', url: `/api/v1/grants/${grantId}/extend`, payload: { duration: '1h', reason: 'x' } },
      { method: 'POST', url: `/api/v1/grants/${grantId}/revoke`, payload: { reason: 'x' } },
      { method: 'POST', url: `/api/v1/grants/${grantId}/credentials` },
      { method: 'POST', url: '/api/v1/break-glass', payload: { target: 'prod-db', entitlement: 'admin', duration: '10m', reason: 'x' } },
      { method: 'GET', url: '/api/v1/audit' },
      { method: 'GET', url: '/api/v1/audit/export' },
      { method: 'GET', url: '/api/v1/config' },
      { method: 'GET', url: '/api/v1/events' },
    ] as const;
    const before = await countAudit(store(), 'auth.refused');
    for (const route of routes) {
      const res = await api.call(null, route);
      expect(res.statusCode, `${route.method} ${route.url}`).toBe(401);
      expect(res.json()).toMatchObject({ code: 'unauthenticated' });
    }
    expect((await countAudit(store(), 'auth.refused')) - before).toBe(routes.length);
  });

  it('hides other people\'s requests and grants as "not found", and records the attempt', async () => {
    const before = await countAudit(store(), 'authz.refused');
    const attempts = [
      { method: 'GET', url: `/api/v1/requests/${pendingId}` },
      { method: 'POST', url: `/api/v1/requests/${pendingId}/cancel` },
      { method: 'GET', url: `/api/v1/grants/${grantId}` },
      { method: 'POST', url: `/api/v1/grants/${grantId}/release`, payload: { reason: 'mine now' } },
      { method: 'POST', url: `/api/v1/grants/${grantId}/extend`, payload: { duration: '1h', reason: 'more' } },
      { method: 'POST', url: `/api/v1/grants/${grantId}/credentials` },
    ] as const;
    for (const attempt of attempts) {
      const res = await api.call('mallory', attempt);
      expect(res.statusCode, `${attempt.method} ${attempt.url}`).toBe(404);
      expect(res.json()).toMatchObject({ code: 'not_found' });
    }
    expect((await countAudit(store(), 'authz.refused')) - before).toBe(attempts.length);
    // An id that does not exist answers the same, so ids cannot be probed.
    const missing = await api.call('mallory', { method: 'GET', url: '/api/v1/grants/grt_0000000000000000000000000' });
    expect(missing.statusCode).toBe(404);
    expect((await api.call('mallory', { method: 'GET', url: '/api/v1/grants' })).json().items).toEqual([]);
    // The grant is untouched.
    expect((await api.call('alice', { method: 'GET', url: `/api/v1/grants/${grantId}` })).json().grant).toMatchObject({
      status: 'active',
      credentialsWaiting: true,
      extensions: 0,
    });
  });

  it('refuses self-approval and approval by someone outside the stage, and records both', async () => {
    const before = await countAudit(store(), 'review.refused');
    const self = await api.call('alice', { method: 'POST', url: `/api/v1/requests/${pendingId}/reviews`, payload: { decision: 'approve' } });
    expect(self.statusCode).toBe(403);
    const outsider = await api.call('carol', { method: 'POST', url: `/api/v1/requests/${pendingId}/reviews`, payload: { decision: 'approve' } });
    expect(outsider.statusCode).toBe(403);
    expect(outsider.json()).toMatchObject({ code: 'not_an_approver' });
    expect((await countAudit(store(), 'review.refused')) - before).toBe(2);
    expect((await api.call('alice', { method: 'GET', url: `/api/v1/requests/${pendingId}` })).json().request.status).toBe('pending');
  });

  it('refuses admin-only and auditor-only actions to other roles, and records them', async () => {
    const before = await countAudit(store(), 'authz.refused');
    const revoke = await api.call('bob', { method: 'POST', url: `/api/v1/grants/${grantId}/revoke`, payload: { reason: 'because' } });
    expect(revoke.statusCode).toBe(403);
    for (const url of ['/api/v1/requests?scope=all', '/api/v1/grants?scope=all', '/api/v1/config']) {
      expect((await api.call('alice', { method: 'GET', url })).statusCode, url).toBe(403);
    }
    expect((await countAudit(store(), 'authz.refused')) - before).toBe(3);
    const audits = await countAudit(store(), 'audit.read_refused');
    expect((await api.call('alice', { method: 'GET', url: '/api/v1/audit' })).statusCode).toBe(403);
    expect((await api.call('alice', { method: 'GET', url: '/api/v1/audit/export' })).statusCode).toBe(403);
    expect((await countAudit(store(), 'audit.read_refused')) - audits).toBe(2);
    // Auditors read everything but change nothing.
    expect((await api.call('auditor', { method: 'GET', url: '/api/v1/grants?scope=all' })).statusCode).toBe(200);
    expect((await api.call('auditor', { method: 'GET', url: '/api/v1/config' })).statusCode).toBe(200);
    const export_ = await api.call('auditor', { method: 'GET', url: '/api/v1/audit/export?format=csv' });
    expect(export_.statusCode).toBe(200);
    expect(export_.body.split('\r\n')[0]).toBe('seq,at,action,actor,subject,data');
    expect((await api.call('auditor', { method: 'POST', url: `/api/v1/grants/${grantId}/revoke`, payload: { reason: 'x' } })).statusCode).toBe(403);
  });

  it('refuses a token without the scope a route needs', async () => {
    const readOnly = await api.tokenWith('bob', ['read']);
    const res = await api.app.inject({
      method: 'POST',
      url: `/api/v1/requests/${pendingId}/reviews`,
      payload: { decision: 'approve' },
      headers: { authorization: `Bearer ${readOnly}` },
    });
    expect(res.statusCode).toBe(403);
    expect(res.json().detail).toMatch(/approve/);
  });

  it('never shows secrets in the config view', async () => {
    const body = (await api.call('root', { method: 'GET', url: '/api/v1/config' })).body;
    expect(body).not.toMatch(/password|secret/i);
  });

  it('refuses a cookie-authenticated POST without the CSRF token', async () => {
    const alice = await store().db.selectFrom('users').select('id').where('name', '=', 'alice').executeTakeFirstOrThrow();
    await setPassword(store().db, alice.id, PASSWORD);
    const login = await api.app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { username: 'alice', password: PASSWORD } });
    expect(login.statusCode).toBe(200);
    const cookie = login.cookies.find((c) => c.name === 'lapse_session')!;
    const csrf = login.json().csrfToken as string;
    const payload = { target: 'prod-db', entitlement: 'readonly', duration: '5m', reason: 'csrf test' };
    const before = await countAudit(store(), 'auth.refused');
    const forged = await api.app.inject({ method: 'POST', url: '/api/v1/requests', payload, cookies: { lapse_session: cookie.value } });
    expect(forged.statusCode).toBe(403);
    const wrong = await api.app.inject({
      method: 'POST',
      url: '/api/v1/requests',
      payload,
      cookies: { lapse_session: cookie.value },
      headers: { 'x-csrf-token': 'x'.repeat(43) },
    });
    expect(wrong.statusCode).toBe(403);
    expect((await countAudit(store(), 'auth.refused')) - before).toBe(2);
    const good = await api.app.inject({
      method: 'POST',
      url: '/api/v1/requests',
      payload,
      cookies: { lapse_session: cookie.value },
      headers: { 'x-csrf-token': csrf },
    });
    expect(good.statusCode).toBe(201);
  });

  it('rejects malformed input with a clear problem and changes nothing', async () => {
    const count = async () =>
      (
        await store()
          .db.selectFrom('requests')
          .select(({ fn }) => fn.countAll<string>().as('n'))
          .executeTakeFirstOrThrow()
      ).n;
    const before = await count();
    const bad = [
      { target: 'prod-db', entitlement: 'readonly', reason: 'x', duration: 'forever' },
      { target: 'PROD; DROP TABLE grants', entitlement: 'readonly', reason: 'x' },
      { target: 'prod-db', entitlement: 'readonly', reason: 'x'.repeat(5000) },
      { target: 'prod-db', entitlement: 'readonly', reason: 'x', extra: true },
    ];
    for (const payload of bad) {
      const res = await api.call('alice', { method: 'POST', url: '/api/v1/requests', payload });
      expect(res.statusCode, JSON.stringify(payload).slice(0, 80)).toBe(400);
      expect(res.json()).toMatchObject({ code: 'validation_failed' });
    }
    expect(await count()).toBe(before);
  });
});
