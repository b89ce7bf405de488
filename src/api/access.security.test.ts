import { sql } from 'kysely';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeEachStore } from '../../test/support/stores.js';
import { alice, startEngine, waitFor, type TestEngine } from '../../test/support/engine.js';
import { createUser, issueApiToken, revokeApiToken } from '../auth/index.js';
import { buildApiServer, type ApiServer } from './index.js';
import { authFor } from '../../test/support/auth-service.js';

describeEachStore('GET /api/v1/access/check (security)', ({ store }) => {
  let t: TestEngine;
  let app: ApiServer;
  const tokens: Record<string, string> = {};
  let revokedId = '';
  beforeAll(async () => {
    t = await startEngine(store());
    app = await buildApiServer({ engine: t.engine, auth: authFor(t.engine), version: 'test' });
    const now = new Date();
    const db = store().db;
    const aliceUser = await createUser(db, { name: 'alice', groups: ['sre', 'oncall'] }, now);
    const bobUser = await createUser(db, { name: 'bob', groups: ['sre-leads'] }, now);
    const rootUser = await createUser(db, { name: 'root', groups: ['admins'] }, now);
    tokens.alice = (await issueApiToken(db, { userId: aliceUser.id, name: 't', scopes: ['read'], expiresInMs: 3_600_000 }, now)).token;
    tokens.bob = (await issueApiToken(db, { userId: bobUser.id, name: 't', scopes: ['read'], expiresInMs: 3_600_000 }, now)).token;
    tokens.bobNoRead = (await issueApiToken(db, { userId: bobUser.id, name: 't', scopes: ['request'], expiresInMs: 3_600_000 }, now)).token;
    tokens.root = (await issueApiToken(db, { userId: rootUser.id, name: 't', scopes: ['admin'], expiresInMs: null }, now)).token;
    tokens.expired = (await issueApiToken(db, { userId: aliceUser.id, name: 't', scopes: ['read'], expiresInMs: 1 }, new Date(now.getTime() - 60_000))).token;
    const revoked = await issueApiToken(db, { userId: aliceUser.id, name: 't', scopes: ['read'], expiresInMs: null }, now);
    tokens.revoked = revoked.token;
    revokedId = revoked.id;
    await revokeApiToken(db, revokedId);
  });
  afterAll(async () => {
    await app.close();
    await t.stop();
  });

  const check = (token: string | undefined, principal = 'alice') =>
    app.inject({
      method: 'GET',
      url: `/api/v1/access/check?principal=${principal}&target=prod-db&entitlement=readonly`,
      headers: token ? { authorization: `Bearer ${token}` } : {},
    });

  it('refuses a call without a token, with a malformed, unknown, expired or revoked token, and audits each', async () => {
    const before = await sql<{ n: string }>`SELECT count(*) AS n FROM audit_events WHERE payload LIKE '%"action":"auth.refused"%'`.execute(store().db);
    for (const token of [undefined, 'not-a-token', `lapse_${'A'.repeat(43)}`, tokens.expired, tokens.revoked]) {
      const res = await check(token);
      expect(res.statusCode).toBe(401);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(res.json()).toMatchObject({ code: 'unauthenticated' });
      expect(res.body).not.toContain('lapse_'); // never echo the token
    }
    const after = await sql<{ n: string }>`SELECT count(*) AS n FROM audit_events WHERE payload LIKE '%"action":"auth.refused"%'`.execute(store().db);
    expect(Number(after.rows[0]!.n) - Number(before.rows[0]!.n)).toBe(5);
  });

  it('refuses a token without the read scope', async () => {
    const res = await check(tokens.bobNoRead, 'bob');
    expect(res.statusCode).toBe(403);
    expect(res.json()).toMatchObject({ code: 'forbidden' });
  });

  it("refuses to tell a user about someone else's access", async () => {
    const res = await check(tokens.bob, 'alice');
    expect(res.statusCode).toBe(403);
  });

  it('answers a user about their own access, and an admin about anyone, saying no at expiry', async () => {
    expect((await check(tokens.alice)).json()).toEqual({ allowed: false, grantId: null, expiresAt: null });
    const { request } = await t.engine.submit({ principal: alice, target: 'prod-db', entitlement: 'readonly', durationMs: 60_000, reason: 'api check test' });
    await waitFor(
      () => check(tokens.alice).then((r) => r.json() as { allowed: boolean }),
      (body) => body.allowed,
    );
    const asAdmin = (await check(tokens.root)).json() as { allowed: boolean; grantId: string };
    expect(asAdmin).toMatchObject({ allowed: true, grantId: request.grantId });
    await sql`UPDATE grants SET expires_at = clock_timestamp() WHERE id = ${request.grantId}`.execute(store().db);
    expect((await check(tokens.alice)).json()).toMatchObject({ allowed: false });
  });

  it('validates the query', async () => {
    const res = await app.inject({
      method: 'GET',
      url: '/api/v1/access/check?principal=alice&target=PROD;drop&entitlement=readonly',
      headers: { authorization: `Bearer ${tokens.alice}` },
    });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ code: 'validation_failed' });
  });
});
