import { sql } from 'kysely';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startEngine, TEST_CONFIG, type TestEngine } from '../../../test/support/engine.js';
import { countAudit, PASSWORD, sessionCookieFrom } from '../../../test/support/sign-in.js';
import { describeEachStore } from '../../../test/support/stores.js';
import { auditedChange } from '../../auth/index.js';
import { createSetupToken, needsFirstAdmin } from '../../auth/setup.js';
import { parseConfig } from '../../config/index.js';
import { buildApiServer, type ApiServer } from '../index.js';
import { authFor } from '../../../test/support/auth-service.js';

describeEachStore('first start: the one-time setup token creates the first admin', ({ store }) => {
  let t: TestEngine;
  let app: ApiServer;
  beforeAll(async () => {
    t = await startEngine(store());
    app = await buildApiServer({ engine: t.engine, auth: authFor(t.engine), version: 'test' });
  });
  afterAll(async () => {
    await app.close();
    await t.stop();
  });

  const newToken = (ageMs = 0) => auditedChange(store().db, async (tx, now) => (await createSetupToken(tx, new Date(now.getTime() - ageMs))).token);
  const setup = (payload: Record<string, string>) => app.inject({ method: 'POST', url: '/api/v1/setup', payload });

  it('refuses a wrong, expired or malformed token, and a short password (which does not spend the token), audited', async () => {
    expect(await needsFirstAdmin(store().db, t.engine.config)).toBe(true);
    const before = await countAudit(store(), 'setup.refused');
    expect((await setup({ token: 'A'.repeat(43), username: 'root', password: PASSWORD })).statusCode).toBe(401);
    expect((await setup({ token: await newToken(25 * 3_600_000), username: 'root', password: PASSWORD })).statusCode).toBe(401);
    expect((await setup({ token: 'short', username: 'root', password: PASSWORD })).statusCode).toBe(401);
    const token = await newToken();
    const weak = await setup({ token, username: 'root', password: 'too short' });
    expect(weak.statusCode).toBe(400);
    expect(weak.json()).toMatchObject({ code: 'validation_failed' });
    expect(await countAudit(store(), 'setup.refused')).toBe(before + 4);
    const { rows } = await sql<{ n: string }>`SELECT count(*) AS n FROM setup_tokens WHERE used_at IS NOT NULL`.execute(store().db);
    expect(Number(rows[0]!.n)).toBe(0);
    expect(await needsFirstAdmin(store().db, t.engine.config)).toBe(true);
  });

  it('creates the first admin in the admin group, signs them in, and works only once', async () => {
    const token = await newToken();
    const res = await setup({ token, username: 'root', password: PASSWORD });
    expect(res.statusCode, res.body).toBe(201);
    expect(res.json()).toMatchObject({ user: { name: 'root', groups: ['admins'] } });
    const me = await app.inject({ method: 'GET', url: '/api/v1/auth/session', cookies: { lapse_session: sessionCookieFrom(res) } });
    expect(me.json()).toMatchObject({ principal: { id: 'root' }, roles: ['admin'] });
    expect(await needsFirstAdmin(store().db, t.engine.config)).toBe(false);
    expect((await setup({ token, username: 'root2', password: PASSWORD })).statusCode).toBe(401);
    const another = await setup({ token: await newToken(), username: 'mallory', password: PASSWORD });
    expect(another.statusCode).toBe(409);
    expect((await app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { username: 'root', password: PASSWORD } })).statusCode).toBe(200);
  });

  it('when roles.admins lists users, the first admin must be one of them (and the rule is explained)', async () => {
    const config = parseConfig(TEST_CONFIG.replace('admins: { groups: [admins] }', 'admins: { users: [ops-lead] }'), 'test.yaml', {});
    const probe = await buildApiServer({ auth: authFor(t.engine), engine: Object.create(t.engine, { config: { value: config } }), version: 'test' });
    try {
      const token = await newToken();
      const res = await probe.inject({ method: 'POST', url: '/api/v1/setup', payload: { token, username: 'mallory', password: PASSWORD } });
      expect(res.statusCode).toBe(400);
      expect(res.json().detail).toMatch(/must be one of roles\.admins\.users: ops-lead/);
      const page = await probe.inject({ method: 'GET', url: `/setup?token=${token}` });
      expect(page.statusCode).toBe(200);
      expect(page.body).toContain('ops-lead');
      const ok = await probe.inject({
        method: 'POST',
        url: '/setup',
        payload: `token=${token}&username=ops-lead&password=${encodeURIComponent(PASSWORD)}`,
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
      });
      expect(ok.statusCode, ok.body).toBe(201);
      expect(ok.body).toContain('ops-lead is the first admin');
      // It ends at the portal, says where policies live and what the new admin may request.
      expect(ok.body).toContain('<a href="/">Open the portal</a>');
      expect(ok.body).toMatch(/policies:<\/code> section of lapse.yaml/);
    } finally {
      await probe.close();
    }
  });
});
