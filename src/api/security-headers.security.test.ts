import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEngine, type TestEngine } from '../../test/support/engine.js';
import { configWithAuth, createLocalUser, PASSWORD, sessionCookieFrom } from '../../test/support/sign-in.js';
import { openPgliteStore } from '../../test/support/stores.js';
import type { Store } from '../store/index.js';
import { buildApiServer, type ApiServer } from './index.js';
import { authFor } from '../../test/support/auth-service.js';

/** Security headers on every response, not only the portal's (issue 9 item 21). */
describe('security headers (security)', () => {
  const servers: { store: Store; t: TestEngine; app: ApiServer }[] = [];
  async function server(auth: string): Promise<ApiServer> {
    const store = await openPgliteStore();
    const t = await startEngine(store, { yaml: configWithAuth(`loginLimits: { perAccountPerHour: 100, perIpPerMinute: 100 }\n${auth}`) });
    const app = await buildApiServer({ engine: t.engine, auth: authFor(t.engine), version: 'test' });
    servers.push({ store, t, app });
    await createLocalUser(store, 'alice', ['sre']);
    return app;
  }
  let plain: ApiServer;
  let https: ApiServer;
  let proxied: ApiServer;
  beforeAll(async () => {
    plain = await server('');
    https = await server('publicUrl: https://lapse.example.com');
    proxied = await server('trustedProxies: [10.0.0.1]');
  });
  afterAll(async () => {
    for (const { store, t, app } of servers) {
      await app.close();
      await t.stop();
      await store.close();
    }
  });

  it('sends nosniff, no framing and a CSP on every kind of response: API, problem, operations, docs', async () => {
    const responses = [
      await plain.inject({ method: 'GET', url: '/healthz' }),
      await plain.inject({ method: 'GET', url: '/api/openapi.json' }),
      await plain.inject({ method: 'GET', url: '/api/v1/auth/status' }),
      await plain.inject({ method: 'GET', url: '/api/v1/requests' }),
      await plain.inject({ method: 'GET', url: '/api/v1/nothing-here' }),
      await plain.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { username: 'alice', password: 'wrong password!' } }),
      await plain.inject({ method: 'GET', url: '/metrics' }),
    ];
    for (const res of responses) {
      const where = `${res.statusCode} ${res.raw.req.url}`;
      expect(res.headers['x-content-type-options'], where).toBe('nosniff');
      expect(res.headers['x-frame-options'], where).toBe('DENY');
      expect(String(res.headers['content-security-policy']), where).toContain("frame-ancestors 'none'");
      expect(res.headers['cross-origin-opener-policy'], where).toBe('same-origin');
      expect(res.headers['referrer-policy'], where).toBeDefined();
      // plain http, no https public URL: no HSTS (a browser would ignore it, and it would pin a name to https)
      expect(res.headers['strict-transport-security'], where).toBeUndefined();
    }
  });

  it('sends HSTS when served over https: an https public URL, or a trusted proxy saying so (not anyone else)', async () => {
    expect((await https.inject({ method: 'GET', url: '/healthz' })).headers['strict-transport-security']).toMatch(/^max-age=\d{8,}; includeSubDomains$/);
    expect((await https.inject({ method: 'GET', url: '/api/v1/nothing-here' })).headers['strict-transport-security']).toBeDefined();
    const viaProxy = await proxied.inject({
      method: 'GET',
      url: '/healthz',
      remoteAddress: '10.0.0.1',
      headers: { 'x-forwarded-proto': 'https', 'x-forwarded-for': '203.0.113.9' },
    });
    expect(viaProxy.headers['strict-transport-security']).toMatch(/^max-age=/);
    const forged = await proxied.inject({ method: 'GET', url: '/healthz', remoteAddress: '10.9.9.9', headers: { 'x-forwarded-proto': 'https' } });
    expect(forged.headers['strict-transport-security']).toBeUndefined();
    const plainProxy = await proxied.inject({ method: 'GET', url: '/healthz', remoteAddress: '10.0.0.1', headers: { 'x-forwarded-proto': 'http' } });
    expect(plainProxy.headers['strict-transport-security']).toBeUndefined();
  });

  it('never lets a response carrying a secret be cached: sign-in, session, new token, and the API by default', async () => {
    const login = await plain.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { username: 'alice', password: PASSWORD } });
    expect(login.statusCode).toBe(200);
    expect(login.headers['cache-control']).toBe('no-store');
    const cookie = sessionCookieFrom(login);
    const csrf = (login.json() as { csrfToken: string }).csrfToken;
    const session = await plain.inject({ method: 'GET', url: '/api/v1/auth/session', cookies: { lapse_session: cookie } });
    expect(session.headers['cache-control']).toBe('no-store');
    const created = await plain.inject({
      method: 'POST',
      url: '/api/v1/tokens',
      cookies: { lapse_session: cookie },
      headers: { 'x-csrf-token': csrf },
      payload: { name: 'ci', scopes: ['read'], expiresIn: '1d' },
    });
    expect(created.statusCode).toBe(201);
    expect(created.headers['cache-control']).toBe('no-store');
    const list = await plain.inject({
      method: 'GET',
      url: '/api/v1/requests',
      headers: { authorization: `Bearer ${(created.json() as { token: string }).token}` },
    });
    expect(list.statusCode).toBe(200);
    expect(list.headers['cache-control']).toBe('no-store');
    expect((await plain.inject({ method: 'GET', url: '/api/v1/nothing-here' })).headers['cache-control']).toBe('no-store');
  });
});
