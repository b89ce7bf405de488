import { sql } from 'kysely';
import { issueApiToken } from '../../auth/index.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEngine, type TestEngine } from '../../../test/support/engine.js';
import { configWithAuth, countAudit, createLocalUser, PASSWORD, sessionCookieFrom } from '../../../test/support/sign-in.js';
import { describeEachStore } from '../../../test/support/stores.js';
import { buildApiServer, type ApiServer } from '../index.js';
import { authFor } from '../../../test/support/auth-service.js';

describeEachStore('sign-in routes (security)', ({ store }) => {
  let t: TestEngine;
  let app: ApiServer;
  let aliceCookie = '';
  let aliceCsrf = '';
  beforeAll(async () => {
    t = await startEngine(store(), { yaml: configWithAuth('loginLimits: { perAccountPerHour: 100, perIpPerMinute: 20 }') });
    app = await buildApiServer({ engine: t.engine, auth: authFor(t.engine), version: 'test' });
    await createLocalUser(store(), 'alice', ['sre']);
    await createLocalUser(store(), 'bob', ['sre-leads']);
    await createLocalUser(store(), 'victim', []);
    const res = await login('alice', PASSWORD);
    aliceCookie = sessionCookieFrom(res);
    aliceCsrf = (res.json() as { csrfToken: string }).csrfToken;
  });
  afterAll(async () => {
    await app.close();
    await t.stop();
  });

  function login(username: string, password: string, ip = '10.1.0.1') {
    return app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { username, password }, remoteAddress: ip });
  }

  it('refuses unauthenticated calls and a forged or malformed cookie, audited', async () => {
    const before = await countAudit(store(), 'auth.refused');
    for (const cookies of [{}, { lapse_session: 'x' }, { lapse_session: 'A'.repeat(43) }] as Record<string, string>[]) {
      const res = await app.inject({ method: 'GET', url: '/api/v1/auth/session', cookies });
      expect(res.statusCode).toBe(401);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(res.json()).toMatchObject({ code: 'unauthenticated' });
    }
    const out = await app.inject({ method: 'POST', url: '/api/v1/auth/logout-all', payload: {} });
    expect(out.statusCode).toBe(401);
    expect(await countAudit(store(), 'auth.refused')).toBe(before + 4);
  });

  it('refuses a cookie-authenticated POST without the CSRF token or with a wrong one (nothing changes), audited', async () => {
    const before = await countAudit(store(), 'auth.refused');
    const bobCsrf = ((await login('bob', PASSWORD)).json() as { csrfToken: string }).csrfToken;
    for (const headers of [{}, { 'x-csrf-token': 'wrong' }, { 'x-csrf-token': bobCsrf }, { 'x-csrf-token': aliceCsrf.slice(0, -1) }]) {
      const res = await app.inject({ method: 'POST', url: '/api/v1/auth/logout-all', cookies: { lapse_session: aliceCookie }, headers, payload: {} });
      expect(res.statusCode).toBe(403);
      expect(res.json()).toMatchObject({ code: 'forbidden', where: 'X-CSRF-Token' });
    }
    expect(await countAudit(store(), 'auth.refused')).toBe(before + 4);
    const { rows } = await sql<{
      data: string;
    }>`SELECT payload AS data FROM audit_events WHERE payload LIKE '%"action":"auth.refused"%' ORDER BY seq DESC LIMIT 1`.execute(store().db);
    expect(JSON.parse(rows[0]!.data)).toMatchObject({ actor: 'alice', data: { reason: 'csrf' } });
    expect((await app.inject({ method: 'GET', url: '/api/v1/auth/session', cookies: { lapse_session: aliceCookie } })).statusCode).toBe(200);
  });

  it('locks an account after 100 failures in an hour: even the right password is refused, audited auth.locked', async () => {
    // 99 earlier failures from many addresses, then the 100th through the API
    await sql`INSERT INTO login_failures (account, ip, at) SELECT 'victim', '10.9.0.' || g, now() - interval '30 minutes' FROM generate_series(1, 99) g`.execute(
      store().db,
    );
    expect((await login('victim', 'a wrong guess here', '10.2.0.1')).statusCode).toBe(401);
    const before = await countAudit(store(), 'auth.locked');
    const right = await login('victim', PASSWORD, '10.2.0.2');
    expect(right.statusCode).toBe(429);
    expect(right.json()).toMatchObject({ code: 'rate_limited' });
    expect(right.json().detail).toMatch(/locked until/);
    expect(right.cookies).toHaveLength(0);
    expect(await countAudit(store(), 'auth.locked')).toBe(before + 1);
    // an unknown name locks the same way, so locking reveals nothing about which accounts exist
    await sql`INSERT INTO login_failures (account, ip, at) SELECT 'ghost', '10.9.1.' || g, now() - interval '10 minutes' FROM generate_series(1, 100) g`.execute(
      store().db,
    );
    expect((await login('ghost', 'whatever it is', '10.2.0.3')).statusCode).toBe(429);
    // the window slides: once the failures are over an hour old, the right password works again
    await sql`UPDATE login_failures SET at = now() - interval '61 minutes' WHERE account = 'victim'`.execute(store().db);
    expect((await login('victim', PASSWORD, '10.2.0.4')).statusCode).toBe(200);
  });

  it('throttles one address after perIpPerMinute failures, audited auth.throttled', async () => {
    const before = await countAudit(store(), 'auth.throttled');
    for (let i = 0; i < 20; i++) expect((await login(`guess${i}`, 'wrong password!', '10.3.0.1')).statusCode).toBe(401);
    const res = await login('alice', PASSWORD, '10.3.0.1');
    expect(res.statusCode).toBe(429);
    expect(await countAudit(store(), 'auth.throttled')).toBe(before + 1);
    expect((await login('alice', PASSWORD, '10.3.0.2')).statusCode).toBe(200);
  });

  it('refuses an expired session, audited', async () => {
    const cookie = sessionCookieFrom(await login('bob', PASSWORD));
    await sql`UPDATE sessions SET expires_at = now() - interval '1 second' WHERE ended_at IS NULL AND user_id = (SELECT id FROM users WHERE name = 'bob')`.execute(
      store().db,
    );
    const before = await countAudit(store(), 'auth.refused');
    expect((await app.inject({ method: 'GET', url: '/api/v1/auth/session', cookies: { lapse_session: cookie } })).statusCode).toBe(401);
    expect(await countAudit(store(), 'auth.refused')).toBe(before + 1);
  });

  describe('API tokens', () => {
    const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
    let aliceRead = '';
    let bobTokenId = '';
    let bobToken = '';
    beforeAll(async () => {
      const db = store().db;
      const alice = await db.selectFrom('users').select('id').where('name', '=', 'alice').executeTakeFirstOrThrow();
      const bob = await db.selectFrom('users').select('id').where('name', '=', 'bob').executeTakeFirstOrThrow();
      aliceRead = (await issueApiToken(db, { userId: alice.id, name: 'read only', scopes: ['read'], expiresInMs: 3_600_000 }, new Date())).token;
      const bobIssued = await issueApiToken(db, { userId: bob.id, name: 'bob cli', scopes: ['read', 'request'], expiresInMs: 3_600_000 }, new Date());
      bobTokenId = bobIssued.id;
      bobToken = bobIssued.token;
    });

    it('creates a token once (the secret only in the answer), lists mine with last use, and revokes it', async () => {
      const created = await app.inject({
        method: 'POST',
        url: '/api/v1/tokens',
        headers: { 'x-csrf-token': aliceCsrf },
        cookies: { lapse_session: aliceCookie },
        payload: { name: 'laptop', scopes: ['read', 'request'], expiresIn: '30d' },
      });
      expect(created.statusCode).toBe(201);
      const token = created.json() as { id: string; token: string; expiresAt: string };
      expect(token.token).toMatch(/^lapse_/);
      expect(Date.parse(token.expiresAt) - Date.now()).toBeGreaterThan(29 * 86_400_000);
      expect((await app.inject({ method: 'GET', url: '/api/v1/auth/session', headers: bearer(token.token) })).json()).toMatchObject({
        principal: { id: 'alice' },
        via: 'token',
        scopes: ['read', 'request'],
      });
      const list = (await app.inject({ method: 'GET', url: '/api/v1/tokens', headers: bearer(token.token) })).json() as {
        tokens: { id: string; lastUsedAt: string | null; status: string }[];
      };
      expect(JSON.stringify(list)).not.toContain(token.token);
      expect(list.tokens.find((t) => t.id === token.id)).toMatchObject({ status: 'active', lastUsedAt: expect.any(String) });
      expect(list.tokens.every((t) => t.id !== bobTokenId)).toBe(true);
      const revoked = await app.inject({ method: 'DELETE', url: `/api/v1/tokens/${token.id}`, headers: bearer(aliceRead) });
      expect(revoked.json()).toEqual({ revoked: true });
      expect((await app.inject({ method: 'GET', url: '/api/v1/auth/session', headers: bearer(token.token) })).statusCode).toBe(401);
    });

    it("refuses to revoke or list another user's tokens (not found), audited, and bob's token keeps working", async () => {
      const before = await countAudit(store(), 'auth.refused');
      const res = await app.inject({ method: 'DELETE', url: `/api/v1/tokens/${bobTokenId}`, headers: bearer(aliceRead) });
      expect(res.statusCode).toBe(404);
      const list = await app.inject({ method: 'GET', url: '/api/v1/tokens?user=bob', headers: bearer(aliceRead) });
      expect(list.statusCode).toBe(404);
      expect(await countAudit(store(), 'auth.refused')).toBe(before + 2);
      expect((await app.inject({ method: 'GET', url: '/api/v1/auth/session', headers: bearer(bobToken) })).statusCode).toBe(200);
    });

    it('refuses a token with more scopes than the caller has, and admin for a non-admin', async () => {
      const wider = await app.inject({
        method: 'POST',
        url: '/api/v1/tokens',
        headers: bearer(aliceRead),
        payload: { name: 'escalate', scopes: ['read', 'approve'] },
      });
      expect(wider.statusCode).toBe(403);
      expect(wider.json()).toMatchObject({ code: 'forbidden', where: 'scopes' });
      const admin = await app.inject({
        method: 'POST',
        url: '/api/v1/tokens',
        headers: { 'x-csrf-token': aliceCsrf },
        cookies: { lapse_session: aliceCookie },
        payload: { name: 'escalate', scopes: ['admin'] },
      });
      expect(admin.statusCode).toBe(403);
      const forOther = await app.inject({
        method: 'POST',
        url: '/api/v1/tokens',
        headers: bearer(aliceRead),
        payload: { name: 'x', scopes: ['read'], user: 'bob' },
      });
      expect(forOther.statusCode).toBe(403);
    });

    it('refuses a call needing a scope the token lacks (wrong scope), audited', async () => {
      const db = store().db;
      const bob = await db.selectFrom('users').select('id').where('name', '=', 'bob').executeTakeFirstOrThrow();
      const requestOnly = (await issueApiToken(db, { userId: bob.id, name: 'x', scopes: ['request'], expiresInMs: 60_000 }, new Date())).token;
      const before = await countAudit(store(), 'auth.refused');
      const res = await app.inject({ method: 'GET', url: '/api/v1/tokens', headers: bearer(requestOnly) });
      expect(res.statusCode).toBe(403);
      expect(await countAudit(store(), 'auth.refused')).toBe(before + 1);
    });

    it('refuses a revoked token of another user, and a CLI code that was never issued, audited', async () => {
      const db = store().db;
      const bob = await db.selectFrom('users').select('id').where('name', '=', 'bob').executeTakeFirstOrThrow();
      const issued = await issueApiToken(db, { userId: bob.id, name: 'gone', scopes: ['read'], expiresInMs: 60_000 }, new Date());
      await app.inject({ method: 'DELETE', url: `/api/v1/tokens/${issued.id}`, headers: bearer(bobToken) });
      const before = await countAudit(store(), 'auth.refused');
      expect((await app.inject({ method: 'GET', url: '/api/v1/tokens', headers: bearer(issued.token) })).statusCode).toBe(401);
      const code = await app.inject({ method: 'POST', url: '/api/v1/auth/cli/token', payload: { code: 'A'.repeat(43), codeVerifier: 'B'.repeat(43) } });
      expect(code.statusCode).toBe(401);
      expect(await countAudit(store(), 'auth.refused')).toBe(before + 2);
    });
  });

  it('never redirects off the server after a form sign-in (open redirect)', async () => {
    for (const returnTo of ['https://evil.example/', '//evil.example/x', '/\\evil.example', 'javascript:alert(1)', '/ok\r\nLocation: https://evil.example']) {
      const res = await app.inject({
        method: 'POST',
        url: '/auth/login',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        payload: new URLSearchParams({ username: 'bob', password: PASSWORD, returnTo }).toString(),
        remoteAddress: '10.4.0.1',
      });
      expect(res.statusCode).toBe(303);
      const location = String(res.headers.location);
      expect(location.startsWith('/') && !location.startsWith('//') && !location.includes('\\')).toBe(true);
      expect(new URL(location, 'http://lapse.test').origin).toBe('http://lapse.test');
    }
    const kept = await app.inject({
      method: 'POST',
      url: '/auth/login',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: new URLSearchParams({ username: 'bob', password: PASSWORD, returnTo: '/requests?mine=1' }).toString(),
    });
    expect(kept.headers.location).toBe('/requests?mine=1');
  });

  it('sends a CLI sign-in only to 127.0.0.1 on the port the CLI gave, with a code bound to its PKCE challenge', async () => {
    const bad = await app.inject({ method: 'GET', url: '/auth/cli?port=80&state=abcdefghijklmnop&code_challenge=x' });
    expect(bad.statusCode).toBe(400);
    const challenge = 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM';
    const res = await app.inject({
      method: 'POST',
      url: '/auth/login',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: new URLSearchParams({ username: 'bob', password: PASSWORD, port: '50123', state: 'abcdefghijklmnop', code_challenge: challenge }).toString(),
    });
    expect(res.statusCode).toBe(303);
    const location = new URL(String(res.headers.location));
    expect(`${location.origin}${location.pathname}`).toBe('http://127.0.0.1:50123/callback');
    expect(location.searchParams.get('state')).toBe('abcdefghijklmnop');
    const code = location.searchParams.get('code')!;
    const wrongVerifier = await app.inject({ method: 'POST', url: '/api/v1/auth/cli/token', payload: { code, codeVerifier: 'x'.repeat(43) } });
    expect(wrongVerifier.statusCode).toBe(401);
    // the code was spent by the failed attempt: a stolen code cannot be retried
    const right = await app.inject({
      method: 'POST',
      url: '/api/v1/auth/cli/token',
      payload: { code, codeVerifier: 'dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk' },
    });
    expect(right.statusCode).toBe(401);
  });

  it('refuses a sign-in form posted from another site (login CSRF)', async () => {
    const form = { 'content-type': 'application/x-www-form-urlencoded', host: 'lapse.test' };
    const payload = new URLSearchParams({ username: 'bob', password: PASSWORD }).toString();
    for (const origin of ['https://evil.example', 'null', 'http://lapse.test.evil.example']) {
      const res = await app.inject({ method: 'POST', url: '/auth/login', headers: { ...form, origin }, payload });
      expect(res.statusCode).toBe(403);
      expect(res.cookies).toHaveLength(0);
    }
    expect((await app.inject({ method: 'POST', url: '/auth/login', headers: { ...form, origin: 'http://lapse.test' }, payload })).statusCode).toBe(303);
  });

  it('bounds the input', async () => {
    const res = await login('alice', 'x'.repeat(1025));
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ code: 'validation_failed' });
    expect(res.body).not.toContain('xxxxxxxx');
  });
});
