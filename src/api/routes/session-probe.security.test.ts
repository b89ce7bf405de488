import { sql } from 'kysely';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startEngine, type TestEngine } from '../../../test/support/engine.js';
import { configWithAuth, createLocalUser, PASSWORD, sessionCookieFrom } from '../../../test/support/sign-in.js';
import { describeEachStore } from '../../../test/support/stores.js';
import { issueApiToken } from '../../auth/index.js';
import { buildApiServer, type ApiServer } from '../index.js';
import { authFor } from '../../../test/support/auth-service.js';

/** Every audit event, so a test can say "nothing at all was written". */
async function auditCount(t: TestEngine): Promise<number> {
  const { rows } = await sql<{ n: string }>`SELECT count(*) AS n FROM audit_events`.execute(t.engine.store.db);
  return Number(rows[0]!.n);
}

describeEachStore('GET /api/v1/auth/status: "am I signed in?" (security)', ({ store }) => {
  let t: TestEngine;
  let app: ApiServer;
  beforeAll(async () => {
    t = await startEngine(store(), { yaml: configWithAuth('loginLimits: { perAccountPerHour: 100, perIpPerMinute: 100 }') });
    app = await buildApiServer({ engine: t.engine, auth: authFor(t.engine), version: 'test' });
    await createLocalUser(store(), 'alice', ['sre']);
  });
  afterAll(async () => {
    await app.close();
    await t.stop();
  });

  it('answers an anonymous visitor 200 {signedIn:false}, writes no audit event, and is never cached', async () => {
    const before = await auditCount(t);
    for (let i = 0; i < 5; i++) {
      const res = await app.inject({ method: 'GET', url: '/api/v1/auth/status' });
      expect(res.statusCode).toBe(200);
      expect(res.json()).toEqual({ signedIn: false, session: null });
      expect(res.headers['cache-control']).toBe('no-store');
    }
    expect(await auditCount(t)).toBe(before);
  });

  it('answers a signed-in session with who it is and the CSRF token', async () => {
    const login = await app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { username: 'alice', password: PASSWORD } });
    const res = await app.inject({ method: 'GET', url: '/api/v1/auth/status', cookies: { lapse_session: sessionCookieFrom(login) } });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ signedIn: true, session: { principal: { id: 'alice' }, via: 'session', csrfToken: login.json().csrfToken } });
    expect(res.headers['cache-control']).toBe('no-store');
  });

  it('still refuses and audits a presented credential that is not valid, and clears a dead session cookie', async () => {
    const before = await sql<{ n: string }>`SELECT count(*) AS n FROM audit_events WHERE payload LIKE '%"action":"auth.refused"%'`.execute(store().db);
    const cookie = await app.inject({ method: 'GET', url: '/api/v1/auth/status', cookies: { lapse_session: 'A'.repeat(43) } });
    expect(cookie.statusCode).toBe(401);
    expect(cookie.cookies.find((c) => c.name === 'lapse_session')?.value).toBe('');
    const token = await app.inject({ method: 'GET', url: '/api/v1/auth/status', headers: { authorization: `Bearer lapse_${'x'.repeat(43)}` } });
    expect(token.statusCode).toBe(401);
    const after = await sql<{ n: string }>`SELECT count(*) AS n FROM audit_events WHERE payload LIKE '%"action":"auth.refused"%'`.execute(store().db);
    expect(Number(after.rows[0]!.n)).toBe(Number(before.rows[0]!.n) + 2);
  });

  it('keeps GET /api/v1/auth/session as it was for existing clients (401 without credentials, audited)', async () => {
    const before = await auditCount(t);
    expect((await app.inject({ method: 'GET', url: '/api/v1/auth/session' })).statusCode).toBe(401);
    expect(await auditCount(t)).toBe(before + 1);
    const user = await store().db.selectFrom('users').select('id').where('name', '=', 'alice').executeTakeFirstOrThrow();
    const { token } = await issueApiToken(store().db, { userId: user.id, name: 't', scopes: ['read'], expiresInMs: 60_000 }, new Date());
    const me = await app.inject({ method: 'GET', url: '/api/v1/auth/session', headers: { authorization: `Bearer ${token}` } });
    expect(me.json()).toMatchObject({ principal: { id: 'alice' }, via: 'token', csrfToken: null });
  });
});
