import type { InjectOptions } from 'fastify';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApi, type TestApi } from '../../../test/support/api.js';
import { TEST_CONFIG } from '../../../test/support/engine.js';
import { countAudit } from '../../../test/support/sign-in.js';
import { describeEachStore } from '../../../test/support/stores.js';
import { createUser, issueApiToken, type TokenScope } from '../../auth/index.js';
import { parseConfig } from '../../config/index.js';

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

/** The newest audit event with this action, parsed. */
async function lastAudit(api: TestApi, action: string): Promise<{ actor: string; subject?: string; data?: Record<string, unknown> }> {
  const { rows } = await sql<{
    payload: string;
  }>`SELECT payload FROM audit_events WHERE payload LIKE ${`%"action":"${action}"%`} ORDER BY seq DESC LIMIT 1`.execute(api.t.engine.store.db);
  if (!rows[0]) throw new Error(`no audit event ${action}`);
  return JSON.parse(rows[0].payload) as { actor: string; subject?: string; data?: Record<string, unknown> };
}

describeEachStore('API tokens: who may act as whom (security)', ({ store }) => {
  let api: TestApi;
  const ids: Record<string, string> = {};
  const tokenFor = async (who: string, scopes: TokenScope[], expiresInMs: number | null = 3_600_000) =>
    (await issueApiToken(store().db, { userId: ids[who]!, name: 'test', scopes, expiresInMs }, new Date())).token;
  const call = (token: string, options: InjectOptions) => api.app.inject({ ...options, headers: { ...bearer(token), ...(options.headers ?? {}) } });

  beforeAll(async () => {
    api = await startTestApi(store());
    const now = new Date();
    // boss is an admin who may also request prod-db/admin and approve its first stage
    ids.boss = (await createUser(store().db, { name: 'boss', groups: ['admins', 'sre', 'sre-leads'] }, now)).id;
    ids['lead-bot'] = (await createUser(store().db, { name: 'lead-bot', groups: ['sre-leads'], kind: 'service' }, now)).id;
    ids['req-bot'] = (await createUser(store().db, { name: 'req-bot', groups: ['sre'], kind: 'service' }, now)).id;
    for (const name of ['alice', 'bob', 'root'])
      ids[name] = (await store().db.selectFrom('users').select('id').where('name', '=', name).executeTakeFirstOrThrow()).id;
  });
  afterAll(async () => {
    await api.stop();
  });

  const ask = (token: string) =>
    call(token, {
      method: 'POST',
      url: '/api/v1/requests',
      payload: { target: 'prod-db', entitlement: 'admin', duration: '30m', reason: 'rotate the replication slot', ticket: 'OPS-9' },
    });

  describe('item 4: nobody approves their own request through a token they minted', () => {
    it('refuses an admin a token for another person (403), audited, and no token is stored', async () => {
      const boss = await tokenFor('boss', ['admin']);
      const before = await store()
        .db.selectFrom('api_tokens')
        .select((eb) => eb.fn.countAll<string>().as('n'))
        .executeTakeFirstOrThrow();
      const refusals = await countAudit(store(), 'auth.refused');
      const res = await call(boss, { method: 'POST', url: '/api/v1/tokens', payload: { name: 'as bob', user: 'bob', scopes: ['read', 'approve'] } });
      expect(res.statusCode).toBe(403);
      expect(res.json()).toMatchObject({ code: 'forbidden', where: 'user' });
      expect(res.json().detail).toMatch(/bob is a person/);
      const after = await store()
        .db.selectFrom('api_tokens')
        .select((eb) => eb.fn.countAll<string>().as('n'))
        .executeTakeFirstOrThrow();
      expect(Number(after.n)).toBe(Number(before.n));
      expect(await countAudit(store(), 'auth.refused')).toBe(refusals + 1);
    });

    it('lets an admin issue a token for a service identity, audited with severity high and the issuer', async () => {
      const boss = await tokenFor('boss', ['admin']);
      const res = await call(boss, {
        method: 'POST',
        url: '/api/v1/tokens',
        payload: { name: 'ci', user: 'lead-bot', scopes: ['read', 'approve'], expiresIn: '30m' },
      });
      expect(res.statusCode).toBe(201);
      const created = await lastAudit(api, 'token.created');
      expect(created).toMatchObject({ actor: 'boss', subject: res.json().id, data: { user: 'lead-bot', severity: 'high' } });
      const row = await sql<{ issued_by: string }>`SELECT issued_by FROM api_tokens WHERE id = ${res.json().id}`.execute(store().db);
      expect(row.rows[0]!.issued_by).toBe('boss');
    });

    it("refuses the review when the reviewer's token was issued by the requester, audited, and the request stays pending", async () => {
      const boss = await tokenFor('boss', ['admin']);
      const request = (await ask(boss)).json().request;
      expect(request.status).toBe('pending');
      const bot = (
        await call(boss, { method: 'POST', url: '/api/v1/tokens', payload: { name: 'ci', user: 'lead-bot', scopes: ['read', 'approve'], expiresIn: '30m' } })
      ).json().token as string;
      const review = await call(bot, { method: 'POST', url: `/api/v1/requests/${request.id}/reviews`, payload: { decision: 'approve' } });
      expect(review.statusCode).toBe(403);
      expect(review.json()).toMatchObject({ code: 'self_approval' });
      expect(review.json().detail).toMatch(/boss/);
      const refused = await lastAudit(api, 'review.refused');
      expect(refused).toMatchObject({ actor: 'lead-bot', subject: request.id, data: { code: 'self_approval', via: { issuedBy: 'boss' } } });
      expect((await api.call('alice', { method: 'GET', url: `/api/v1/requests/${request.id}` })).statusCode).toBe(404);
      expect((await call(boss, { method: 'GET', url: `/api/v1/requests/${request.id}` })).json().request.status).toBe('pending');
      // the inbox does not offer it either
      const inbox = (await call(bot, { method: 'GET', url: '/api/v1/requests?scope=review' })).json();
      expect(inbox.items.map((r: { id: string }) => r.id)).not.toContain(request.id);
      // a real approver still can
      expect((await api.call('bob', { method: 'POST', url: `/api/v1/requests/${request.id}/reviews`, payload: { decision: 'approve' } })).json()).toMatchObject(
        { effect: 'advanced' },
      );
    });

    it('refuses the issuer of the token a request was made with as its reviewer, and records the issuer of every use', async () => {
      const boss = await tokenFor('boss', ['admin']);
      const bot = (
        await call(boss, { method: 'POST', url: '/api/v1/tokens', payload: { name: 'ci', user: 'req-bot', scopes: ['read', 'request'], expiresIn: '30m' } })
      ).json().token as string;
      const created = await ask(bot);
      expect(created.statusCode).toBe(201);
      const request = created.json().request;
      expect(await lastAudit(api, 'request.pending')).toMatchObject({ actor: 'req-bot', subject: request.id, data: { via: { issuedBy: 'boss' } } });
      const review = await call(boss, { method: 'POST', url: `/api/v1/requests/${request.id}/reviews`, payload: { decision: 'approve' } });
      expect(review.statusCode).toBe(403);
      expect(review.json()).toMatchObject({ code: 'self_approval' });
      // bob is a genuine second person
      expect((await api.call('bob', { method: 'POST', url: `/api/v1/requests/${request.id}/reviews`, payload: { decision: 'approve' } })).json()).toMatchObject(
        { effect: 'advanced' },
      );
      expect(await lastAudit(api, 'review.approve')).toMatchObject({ actor: 'bob', data: { via: { issuedBy: 'bob' } } });
    });

    it('refuses a break-glass review through a token the break-glass user issued', async () => {
      const db = store().db;
      const auditBot = (await createUser(db, { name: 'audit-bot', groups: [], kind: 'service' }, new Date())).id;
      await api.t.engine.reloadConfig(
        parseConfig(
          TEST_CONFIG.replace('auditors: { users: [auditor] }', 'auditors: { users: [auditor, audit-bot] }').replace(
            'subjects: { groups: [oncall] }',
            'subjects: { groups: [oncall, admins] }',
          ),
          'test.yaml',
          {},
        ),
      );
      try {
        const boss = await tokenFor('boss', ['admin']);
        const glass = await call(boss, {
          method: 'POST',
          url: '/api/v1/break-glass',
          payload: { target: 'prod-db', entitlement: 'readonly', duration: '10m', reason: 'the database is down and paging everyone' },
        });
        expect(glass.statusCode).toBe(201);
        const issued = await issueApiToken(
          db,
          { userId: auditBot, name: 'reviews', scopes: ['read', 'approve'], expiresInMs: 600_000, issuedBy: 'boss' },
          new Date(),
        );
        const review = await call(issued.token, { method: 'POST', url: `/api/v1/break-glass/${glass.json().request.id}/review`, payload: { comment: 'fine' } });
        expect(review.statusCode).toBe(403);
        expect(review.json()).toMatchObject({ code: 'self_approval' });
      } finally {
        await api.t.engine.reloadConfig(parseConfig(TEST_CONFIG, 'test.yaml', {}));
      }
    });

    it('refuses a token for a person that someone else issued (made before issuers were checked)', async () => {
      const issued = await issueApiToken(
        store().db,
        { userId: ids.bob!, name: 'as bob', scopes: ['read', 'approve'], expiresInMs: 600_000, issuedBy: 'boss' },
        new Date(),
      );
      const res = await call(issued.token, { method: 'GET', url: '/api/v1/auth/session' });
      expect(res.statusCode).toBe(401);
    });
  });

  describe('item 6: a token never mints a token that outlives or outranks it', () => {
    it('refuses a longer-lived or never-expiring token from a token that expires in an hour (nothing stored)', async () => {
      const short = await tokenFor('alice', ['read'], 3_600_000);
      for (const expiresIn of ['never', '2h', '90d']) {
        const res = await call(short, { method: 'POST', url: '/api/v1/tokens', payload: { name: 'longer', scopes: ['read'], expiresIn } });
        expect(res.statusCode, expiresIn).toBe(403);
        expect(res.json()).toMatchObject({ code: 'forbidden', where: 'expiresIn' });
      }
      const rootShort = await tokenFor('root', ['admin'], 3_600_000);
      expect(
        (await call(rootShort, { method: 'POST', url: '/api/v1/tokens', payload: { name: 'forever', scopes: ['admin'], expiresIn: 'never' } })).statusCode,
      ).toBe(403);
      const ok = await call(short, { method: 'POST', url: '/api/v1/tokens', payload: { name: 'shorter', scopes: ['read'], expiresIn: '30m' } });
      expect(ok.statusCode).toBe(201);
      expect(Date.parse(ok.json().expiresAt) - Date.now()).toBeLessThanOrEqual(1_800_000);
      const { rows } = await sql<{ n: string }>`SELECT count(*) AS n FROM api_tokens WHERE name IN ('longer', 'forever')`.execute(store().db);
      expect(Number(rows[0]!.n)).toBe(0);
    });

    it('refuses scopes beyond the token (admin scope included)', async () => {
      const read = await tokenFor('root', ['read'], 3_600_000);
      const res = await call(read, { method: 'POST', url: '/api/v1/tokens', payload: { name: 'wider', scopes: ['admin'], expiresIn: '10m' } });
      expect(res.statusCode).toBe(403);
      expect(res.json()).toMatchObject({ where: 'scopes' });
    });
  });

  describe('a revoked token takes the tokens it minted with it', () => {
    it('revokes every token minted (directly or in turn) by a revoked token, audited, and leaves the others alone', async () => {
      const issued = await issueApiToken(store().db, { userId: ids.root!, name: 'parent', scopes: ['admin', 'read'], expiresInMs: 3_600_000 }, new Date());
      const [parent, parentId] = [issued.token, issued.id];
      const mint = async (token: string, name: string, expiresIn: string, user?: string) => {
        const res = await call(token, { method: 'POST', url: '/api/v1/tokens', payload: { name, scopes: ['read'], expiresIn, ...(user ? { user } : {}) } });
        expect(res.statusCode, res.body).toBe(201);
        return res.json() as { id: string; token: string };
      };
      const child = await mint(parent, 'child', '30m');
      const grandchild = await mint(child.token, 'grandchild', '10m');
      const forService = await mint(parent, 'for a service', '30m', 'req-bot');
      // The parent (a stolen token, say) is revoked by its owner with another token.
      const other = await tokenFor('root', ['read'], 3_600_000);
      const res = await call(other, { method: 'DELETE', url: `/api/v1/tokens/${parentId}` });
      expect(res.statusCode, res.body).toBe(200);

      for (const token of [parent, child.token, grandchild.token, forService.token]) {
        expect((await call(token, { method: 'GET', url: '/api/v1/auth/session' })).statusCode).toBe(401);
      }
      expect((await call(other, { method: 'GET', url: '/api/v1/auth/session' })).statusCode).toBe(200);
      const event = await lastAudit(api, 'token.revoked');
      expect(event.subject).toBe(parentId);
      expect((event.data?.alsoRevoked as string[]).sort()).toEqual([child.id, grandchild.id, forService.id].sort());
    });

    it('signing out everywhere with revokeTokens also revokes what those tokens minted for service identities', async () => {
      const boss = await tokenFor('boss', ['admin', 'read'], 3_600_000);
      const res = await call(boss, { method: 'POST', url: '/api/v1/tokens', payload: { name: 'bot', scopes: ['read'], expiresIn: '30m', user: 'req-bot' } });
      expect(res.statusCode, res.body).toBe(201);
      const bot = res.json().token as string;
      expect((await call(bot, { method: 'GET', url: '/api/v1/auth/session' })).statusCode).toBe(200);
      const out = await call(boss, { method: 'POST', url: '/api/v1/auth/logout-all', payload: { revokeTokens: true } });
      expect(out.statusCode, out.body).toBe(200);
      expect((await call(bot, { method: 'GET', url: '/api/v1/auth/session' })).statusCode).toBe(401);
    });
  });
});

const DEMOTABLE = TEST_CONFIG.replace('admins: { groups: [admins] }', 'admins: { groups: [admins], users: [temp] }');

describeEachStore('API tokens: rights follow the role in force (security)', ({ store }) => {
  let api: TestApi;
  let temp = '';
  let aliceTokenId = '';
  beforeAll(async () => {
    api = await startTestApi(store(), { yaml: DEMOTABLE });
    const db = store().db;
    const user = await createUser(db, { name: 'temp', groups: ['sre'] }, new Date());
    await createUser(db, { name: 'svc', groups: [], kind: 'service' }, new Date());
    temp = (await issueApiToken(db, { userId: user.id, name: 'admin while admin', scopes: ['admin'], expiresInMs: null }, new Date())).token;
    const alice = await db.selectFrom('users').select('id').where('name', '=', 'alice').executeTakeFirstOrThrow();
    aliceTokenId = (await issueApiToken(db, { userId: alice.id, name: 'alice', scopes: ['read'], expiresInMs: null }, new Date())).id;
  });
  afterAll(async () => {
    await api.stop();
  });

  const as = (options: InjectOptions) => api.app.inject({ ...options, headers: bearer(temp) });

  it('item 5: an admin token loses admin power when its user leaves roles.admins (config reload), on every route', async () => {
    expect((await as({ method: 'GET', url: '/api/v1/tokens?user=alice' })).statusCode).toBe(200);
    await api.t.engine.reloadConfig(parseConfig(TEST_CONFIG, 'test.yaml', {}));

    const session = await as({ method: 'GET', url: '/api/v1/auth/session' });
    expect(session.statusCode).toBe(200);
    expect(session.json().scopes).not.toContain('admin');
    expect((await as({ method: 'GET', url: '/api/v1/tokens?user=alice' })).statusCode).toBe(404);
    const minted = await as({ method: 'POST', url: '/api/v1/tokens', payload: { name: 'keep power', user: 'svc', scopes: ['admin'], expiresIn: 'never' } });
    expect(minted.statusCode).toBe(403);
    const own = await as({ method: 'POST', url: '/api/v1/tokens', payload: { name: 'keep power', scopes: ['admin'], expiresIn: 'never' } });
    expect(own.statusCode).toBe(403);
    expect((await as({ method: 'DELETE', url: `/api/v1/tokens/${aliceTokenId}` })).statusCode).toBe(404);
    const alive = await store().db.selectFrom('api_tokens').select('revoked_at').where('id', '=', aliceTokenId).executeTakeFirstOrThrow();
    expect(alive.revoked_at).toBeNull();
    expect((await as({ method: 'POST', url: '/api/v1/reconcile', payload: {} })).statusCode).toBe(403);
    expect((await as({ method: 'GET', url: '/api/v1/requests?scope=all' })).statusCode).toBe(403);
    // what temp may still do as a signed-in person (read, request) keeps working
    expect((await as({ method: 'GET', url: '/api/v1/catalogue' })).statusCode).toBe(200);

    // and back in the role, the same token is an admin token again
    await api.t.engine.reloadConfig(parseConfig(DEMOTABLE, 'test.yaml', {}));
    expect((await as({ method: 'GET', url: '/api/v1/tokens?user=alice' })).statusCode).toBe(200);
  });
});
