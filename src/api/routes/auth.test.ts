import { sql } from 'kysely';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startEngine, type TestEngine } from '../../../test/support/engine.js';
import { configWithAuth, countAudit, createLocalUser, PASSWORD, sessionCookieFrom } from '../../../test/support/sign-in.js';
import { describeEachStore } from '../../../test/support/stores.js';
import { createUser, markSessionMfa } from '../../auth/index.js';
import { buildApiServer, type ApiServer } from '../index.js';
import { authFor } from '../../../test/support/auth-service.js';

describeEachStore('sign-in with local accounts and sessions', ({ store }) => {
  let t: TestEngine;
  let app: ApiServer;
  beforeAll(async () => {
    t = await startEngine(store(), {
      yaml: configWithAuth('sessions: { idleTimeout: 30m, absoluteTimeout: 12h }\nloginLimits: { perAccountPerHour: 100, perIpPerMinute: 1000 }'),
    });
    app = await buildApiServer({ engine: t.engine, auth: authFor(t.engine), version: 'test' });
    await createLocalUser(store(), 'alice', ['sre', 'oncall']);
    await createLocalUser(store(), 'root', ['admins']);
  });
  afterAll(async () => {
    await app.close();
    await t.stop();
  });

  const login = (username: string, password: string, ip = '10.0.0.1') =>
    app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { username, password }, remoteAddress: ip });
  const whoami = (cookie: string) => app.inject({ method: 'GET', url: '/api/v1/auth/session', cookies: { lapse_session: cookie } });

  it('signs in with the right password: an HttpOnly, SameSite=Lax session cookie and a CSRF token', async () => {
    const res = await login('alice', PASSWORD);
    expect(res.statusCode).toBe(200);
    const body = res.json() as { user: { name: string; groups: string[] }; csrfToken: string; expiresAt: string };
    expect(body.user).toEqual({ name: 'alice', kind: 'user', groups: ['sre', 'oncall'] });
    const cookie = res.cookies.find((c) => c.name === 'lapse_session')!;
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Lax', path: '/' });
    expect(cookie.secure).toBeFalsy(); // no https publicUrl configured
    expect(cookie.value).toMatch(/^[A-Za-z0-9_-]{43}$/);
    // only the hash is stored
    const { rows } = await sql<{ n: string }>`SELECT count(*) AS n FROM sessions WHERE secret_hash = ${cookie.value} OR id = ${cookie.value}`.execute(
      store().db,
    );
    expect(Number(rows[0]!.n)).toBe(0);
    const me = (await whoami(cookie.value)).json();
    expect(me).toEqual({
      principal: { id: 'alice', kind: 'user', groups: ['sre', 'oncall'] },
      roles: [],
      scopes: ['read', 'request', 'approve'],
      via: 'session',
      mfaAt: null,
      csrfToken: body.csrfToken,
    });
  });

  it('gives admins the admin scope and reports the MFA time the MFA routes record', async () => {
    const res = await login('root', PASSWORD);
    const cookie = sessionCookieFrom(res);
    const { rows } = await sql<{
      id: string;
    }>`SELECT s.id FROM sessions s JOIN users u ON u.id = s.user_id WHERE u.name = 'root' ORDER BY s.created_at DESC LIMIT 1`.execute(store().db);
    const at = new Date('2030-01-01T00:00:00Z');
    await markSessionMfa(store().db, rows[0]!.id, at);
    const me = (await whoami(cookie)).json() as { roles: string[]; scopes: string[]; mfaAt: string };
    expect(me.roles).toEqual(['admin']);
    expect(me.scopes).toContain('admin');
    expect(me.mfaAt).toBe(at.toISOString());
  });

  it('answers a wrong password and an unknown user alike, in similar time, and audits both', async () => {
    const before = await countAudit(store(), 'auth.login_failed');
    const started = performance.now();
    const wrong = await login('alice', 'not the right password');
    const wrongMs = performance.now() - started;
    const unknownStart = performance.now();
    const unknown = await login('nobody-at-all', 'not the right password');
    const unknownMs = performance.now() - unknownStart;
    for (const res of [wrong, unknown]) {
      expect(res.statusCode).toBe(401);
      expect(res.json()).toMatchObject({ code: 'unauthenticated', detail: 'the user name or password is wrong' });
      expect(res.cookies).toHaveLength(0);
    }
    // both paths run one argon2id verification (~20 ms); neither is an order of magnitude faster
    expect(unknownMs).toBeGreaterThan(wrongMs / 4);
    expect(await countAudit(store(), 'auth.login_failed')).toBe(before + 2);
  });

  it('signs out this session: the cookie no longer works', async () => {
    const res = await login('alice', PASSWORD);
    const cookie = sessionCookieFrom(res);
    const csrf = (res.json() as { csrfToken: string }).csrfToken;
    const out = await app.inject({ method: 'POST', url: '/api/v1/auth/logout', cookies: { lapse_session: cookie }, headers: { 'x-csrf-token': csrf } });
    expect(out.statusCode).toBe(200);
    expect(out.json()).toEqual({ ended: 'session', logoutUrl: null });
    expect(out.cookies.find((c) => c.name === 'lapse_session')?.value).toBe('');
    expect((await whoami(cookie)).statusCode).toBe(401);
  });

  it('signs out everywhere: every session of the user ends, others stay', async () => {
    const a1 = await login('alice', PASSWORD);
    const a2 = await login('alice', PASSWORD);
    const r1 = await login('root', PASSWORD);
    const csrf = (a1.json() as { csrfToken: string }).csrfToken;
    const out = await app.inject({
      method: 'POST',
      url: '/api/v1/auth/logout-all',
      cookies: { lapse_session: sessionCookieFrom(a1) },
      headers: { 'x-csrf-token': csrf },
      payload: {},
    });
    expect(out.statusCode, out.body).toBe(200);
    expect((out.json() as { sessionsEnded: number }).sessionsEnded).toBeGreaterThanOrEqual(2);
    expect((await whoami(sessionCookieFrom(a1))).statusCode).toBe(401);
    expect((await whoami(sessionCookieFrom(a2))).statusCode).toBe(401);
    expect((await whoami(sessionCookieFrom(r1))).statusCode).toBe(200);
  });

  it('ends sessions idle longer than idleTimeout and older than absoluteTimeout', async () => {
    const idle = sessionCookieFrom(await login('alice', PASSWORD));
    const old = sessionCookieFrom(await login('alice', PASSWORD));
    const fresh = sessionCookieFrom(await login('alice', PASSWORD));
    const ids = await sql<{ id: string }>`SELECT id FROM sessions ORDER BY created_at DESC, id DESC LIMIT 3`.execute(store().db);
    const [freshId, oldId, idleId] = ids.rows.map((r) => r.id);
    await sql`UPDATE sessions SET last_seen_at = now() - interval '31 minutes' WHERE id = ${idleId}`.execute(store().db);
    await sql`UPDATE sessions SET last_seen_at = now() - interval '29 minutes' WHERE id = ${freshId}`.execute(store().db);
    await sql`UPDATE sessions SET created_at = now() - interval '12 hours 1 minute', expires_at = now() - interval '1 minute' WHERE id = ${oldId}`.execute(
      store().db,
    );
    expect((await whoami(idle)).statusCode).toBe(401);
    expect((await whoami(old)).statusCode).toBe(401);
    expect((await whoami(fresh)).statusCode).toBe(200);
    // sessions long over are pruned at the user's next sign-in
    await sql`UPDATE sessions SET expires_at = now() - interval '31 days' WHERE id = ${oldId}`.execute(store().db);
    await login('alice', PASSWORD);
    expect(Number((await sql<{ n: string }>`SELECT count(*) AS n FROM sessions WHERE id = ${oldId}`.execute(store().db)).rows[0]!.n)).toBe(0);
    // activity restarted the idle clock
    const { rows } = await sql<{ age: number }>`SELECT extract(epoch FROM now() - last_seen_at)::float AS age FROM sessions WHERE id = ${freshId}`.execute(
      store().db,
    );
    expect(rows[0]!.age).toBeLessThan(60);
  });

  it('lets an admin issue a token for a service identity, which then acts as that service', async () => {
    await createUser(store().db, { name: 'ci-bot', groups: ['deployers'], kind: 'service' }, new Date());
    const res = await login('root', PASSWORD);
    const csrf = (res.json() as { csrfToken: string }).csrfToken;
    const created = await app.inject({
      method: 'POST',
      url: '/api/v1/tokens',
      cookies: { lapse_session: sessionCookieFrom(res) },
      headers: { 'x-csrf-token': csrf },
      payload: { name: 'deploys', scopes: ['read', 'request'], expiresIn: '7d', user: 'ci-bot' },
    });
    expect(created.statusCode, created.body).toBe(201);
    const { token } = created.json() as { token: string };
    const me = await app.inject({ method: 'GET', url: '/api/v1/auth/session', headers: { authorization: `Bearer ${token}` } });
    expect(me.json()).toMatchObject({ principal: { id: 'ci-bot', kind: 'service', groups: ['deployers'] }, scopes: ['read', 'request'], via: 'token' });
    const adminForBot = await app.inject({
      method: 'POST',
      url: '/api/v1/tokens',
      cookies: { lapse_session: sessionCookieFrom(res) },
      headers: { 'x-csrf-token': csrf },
      payload: { name: 'x', scopes: ['admin'], user: 'ci-bot' },
    });
    expect(adminForBot.statusCode).toBe(403);
    // a service identity has no password: it cannot sign in with one
    expect((await login('ci-bot', PASSWORD)).statusCode).toBe(401);
  });

  it('refuses a disabled user, even with a live session', async () => {
    const cookie = sessionCookieFrom(await login('alice', PASSWORD));
    await sql`UPDATE users SET disabled_at = now() WHERE name = 'alice'`.execute(store().db);
    try {
      expect((await whoami(cookie)).statusCode).toBe(401);
      expect((await login('alice', PASSWORD)).statusCode).toBe(401);
    } finally {
      await sql`UPDATE users SET disabled_at = NULL WHERE name = 'alice'`.execute(store().db);
    }
  });
});

describeEachStore('sign-in behind https', ({ store }) => {
  it('marks the session cookie Secure with the __Host- prefix when publicUrl is https', async () => {
    const t = await startEngine(store(), { yaml: configWithAuth('publicUrl: https://lapse.example.com') });
    const app = await buildApiServer({ engine: t.engine, auth: authFor(t.engine), version: 'test' });
    try {
      await createLocalUser(store(), 'alice', ['sre']);
      const res = await app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { username: 'alice', password: PASSWORD } });
      const cookie = res.cookies.find((c) => c.name === '__Host-lapse_session')!;
      expect(cookie).toMatchObject({ secure: true, httpOnly: true, sameSite: 'Lax', path: '/' });
      expect(cookie.domain).toBeUndefined();
      expect(res.cookies.find((c) => c.name === 'lapse_session')).toBeUndefined();
      const me = await app.inject({ method: 'GET', url: '/api/v1/auth/session', cookies: { '__Host-lapse_session': cookie.value } });
      expect(me.statusCode).toBe(200);
      // the plain name is not accepted over https (a subdomain could have planted it)
      expect((await app.inject({ method: 'GET', url: '/api/v1/auth/session', cookies: { lapse_session: cookie.value } })).statusCode).toBe(401);
    } finally {
      await app.close();
      await t.stop();
    }
  });

  it('publishes the sign-in routes in the OpenAPI document', async () => {
    const t = await startEngine(store(), { start: false });
    const app = await buildApiServer({ engine: t.engine, auth: authFor(t.engine), version: 'test' });
    try {
      const doc = (await app.inject({ method: 'GET', url: '/api/openapi.json' })).json() as { paths: Record<string, unknown> };
      expect(Object.keys(doc.paths)).toEqual(
        expect.arrayContaining([
          '/api/v1/auth/login',
          '/api/v1/auth/session',
          '/api/v1/auth/logout',
          '/api/v1/auth/logout-all',
          '/api/v1/tokens',
          '/api/v1/tokens/{id}',
          '/api/v1/auth/cli/token',
          '/api/v1/setup',
          '/auth/oidc/login',
          '/auth/oidc/callback',
          '/auth/cli',
        ]),
      );
    } finally {
      await app.close();
    }
  });
});
