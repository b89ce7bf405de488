import { sql } from 'kysely';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startEngine, type TestEngine } from '../../test/support/engine.js';
import { configWithAuth, createLocalUser } from '../../test/support/sign-in.js';
import { describeEachStore } from '../../test/support/stores.js';
import { buildApiServer, type ApiServer } from './index.js';
import { authFor } from '../../test/support/auth-service.js';

/**
 * The client address behind a reverse proxy: X-Forwarded-For is believed only from the proxies
 * named in auth.trustedProxies. It decides the per-IP sign-in limit and what the audit log says.
 */
describeEachStore('client addresses behind a reverse proxy (security)', ({ store }) => {
  let t: TestEngine;
  let direct: ApiServer;
  let proxied: ApiServer;
  beforeAll(async () => {
    t = await startEngine(store(), { yaml: configWithAuth('loginLimits: { perIpPerMinute: 3 }\ntrustedProxies: [10.9.0.0/16]') });
    proxied = await buildApiServer({ engine: t.engine, auth: authFor(t.engine), version: 'test' });
    const plain = await startEngine(store(), { yaml: configWithAuth('loginLimits: { perIpPerMinute: 3 }') });
    direct = await buildApiServer({ engine: plain.engine, auth: authFor(plain.engine), version: 'test' });
    await createLocalUser(store(), 'alice', ['sre']);
    return async () => {
      await plain.stop();
    };
  });
  afterAll(async () => {
    await Promise.all([direct.close(), proxied.close()]);
    await t.stop();
  });

  const wrongPassword = (app: ApiServer, from: string, forwardedFor?: string) =>
    app.inject({
      method: 'POST',
      url: '/api/v1/auth/login',
      payload: { username: 'alice', password: 'not the password at all' },
      remoteAddress: from,
      ...(forwardedFor ? { headers: { 'x-forwarded-for': forwardedFor } } : {}),
    });
  const lastFailureIp = async () => {
    const { rows } = await sql<{
      payload: string;
    }>`SELECT payload FROM audit_events WHERE payload LIKE '%"action":"auth.login_failed"%' ORDER BY seq DESC LIMIT 1`.execute(store().db);
    return (JSON.parse(rows[0]!.payload) as { data: { ip: string } }).data.ip;
  };

  it("takes the client's address from X-Forwarded-For when a trusted proxy sends it", async () => {
    expect((await wrongPassword(proxied, '10.9.0.2', '203.0.113.7')).statusCode).toBe(401);
    expect(await lastFailureIp()).toBe('203.0.113.7');
  });

  it('keeps each client behind the proxy to its own per-IP limit, instead of throttling everyone at once', async () => {
    for (let i = 0; i < 3; i++) expect((await wrongPassword(proxied, '10.9.0.2', '198.51.100.1')).statusCode).toBe(401);
    expect((await wrongPassword(proxied, '10.9.0.2', '198.51.100.1')).json()).toMatchObject({ code: 'rate_limited' });
    // Another client through the same proxy is not throttled.
    expect((await wrongPassword(proxied, '10.9.0.2', '198.51.100.2')).statusCode).toBe(401);
  });

  it('ignores X-Forwarded-For from anyone else, so a client cannot pick its own address', async () => {
    expect((await wrongPassword(proxied, '192.0.2.50', '203.0.113.99')).statusCode).toBe(401);
    expect(await lastFailureIp()).toBe('192.0.2.50');
    expect((await wrongPassword(direct, '192.0.2.60', '203.0.113.98')).statusCode).toBe(401);
    expect(await lastFailureIp()).toBe('192.0.2.60');
    // Without trusted proxies, rotating the header does not escape the per-IP limit.
    for (let i = 0; i < 2; i++) await wrongPassword(direct, '192.0.2.60', `203.0.113.${i}`);
    expect((await wrongPassword(direct, '192.0.2.60', '203.0.113.200')).json()).toMatchObject({ code: 'rate_limited' });
  });
});
