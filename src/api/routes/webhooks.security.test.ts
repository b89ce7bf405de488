import { afterAll, beforeAll, expect, it } from 'vitest';
import { Webhook } from 'standardwebhooks';
import { describeEachStore } from '../../../test/support/stores.js';
import { startEngine, type TestEngine } from '../../../test/support/engine.js';
import { authFor } from '../../../test/support/auth-service.js';
import { createUser, issueApiToken } from '../../auth/index.js';
import { startReceiver, type TestReceiver } from '../../notify/testing/webhook-receiver.js';
import { buildApiServer, type ApiServer } from '../index.js';

describeEachStore('webhook routes (security)', ({ store }) => {
  let t: TestEngine;
  let app: ApiServer;
  let receiver: TestReceiver;
  const tokens: Record<string, string> = {};
  beforeAll(async () => {
    receiver = await startReceiver();
    t = await startEngine(store());
    app = await buildApiServer({ engine: t.engine, auth: authFor(t.engine), version: 'test' });
    const now = new Date();
    const db = store().db;
    const issue = async (name: string, groups: string[], scopes: string[]) => {
      const user = (await db.selectFrom('users').select('id').where('name', '=', name).executeTakeFirst()) ?? (await createUser(db, { name, groups }, now));
      return (await issueApiToken(db, { userId: user.id, name: 't', scopes, expiresInMs: 3_600_000 }, now)).token;
    };
    tokens.alice = await issue('alice', ['sre'], ['read', 'request', 'approve']);
    tokens.auditor = await issue('auditor', [], ['read']);
    tokens.mallory = await issue('mallory', ['contractors'], ['admin']);
    tokens.rootRead = await issue('root', ['admins'], ['read']);
    tokens.root = await issue('root', ['admins'], ['admin']);
  });
  afterAll(async () => {
    await app?.close();
    await t?.stop();
    await receiver?.close();
  });

  const call = (method: 'GET' | 'POST' | 'DELETE', url: string, token?: string, payload?: object) =>
    app.inject({ method, url, ...(payload ? { payload } : {}), headers: token ? { authorization: `Bearer ${token}` } : {} });
  const audited = async (action: string) => {
    const rows = await store().db.selectFrom('audit_events').select('payload').orderBy('seq').execute();
    return rows.map((r) => JSON.parse(r.payload) as { action: string; actor: string; data: Record<string, unknown> }).filter((e) => e.action === action);
  };
  const someId = 'whk_00000000000000000000000000';
  const routes = [
    ['GET', '/api/v1/webhooks'],
    ['POST', '/api/v1/webhooks'],
    ['GET', `/api/v1/webhooks/${someId}`],
    ['DELETE', `/api/v1/webhooks/${someId}`],
    ['GET', `/api/v1/webhooks/${someId}/deliveries`],
    ['POST', `/api/v1/webhooks/${someId}/replay`],
  ] as const;

  it('refuses every route without valid credentials', async () => {
    for (const [method, url] of routes) {
      for (const token of [undefined, 'lapse_not-a-token']) {
        const res = await call(method, url, token, method === 'POST' ? {} : undefined);
        expect(res.statusCode, `${method} ${url}`).toBe(401);
      }
    }
  });

  it('refuses everyone but admins, audits the refusal, and creates nothing', async () => {
    const body = { url: receiver.url, allowInsecureHttp: true };
    for (const who of ['alice', 'auditor', 'mallory']) {
      for (const [method, url] of routes) {
        const res = await call(
          method,
          url,
          tokens[who],
          method === 'POST' ? (url.endsWith('replay') ? { delivery: 'whd_00000000000000000000000000' } : body) : undefined,
        );
        expect(res.statusCode, `${who} ${method} ${url}`).toBe(403);
      }
    }
    // An admin's read-only token reads but does not change.
    expect((await call('GET', '/api/v1/webhooks', tokens.rootRead)).statusCode).toBe(200);
    expect((await call('POST', '/api/v1/webhooks', tokens.rootRead, body)).statusCode).toBe(403);
    // Every refusal is audited: by the role rule, or by the credential check (a token without the scope).
    expect(await audited('webhook.list_refused')).toEqual(expect.arrayContaining([expect.objectContaining({ actor: 'mallory' })]));
    expect((await audited('auth.refused')).length).toBeGreaterThanOrEqual(9);
    expect(await audited('webhook.created')).toEqual([]);
    expect((await call('GET', '/api/v1/webhooks', tokens.rootRead)).json()).toMatchObject({ webhooks: [] });
  });

  it('shows the secret once, never in lists, logs of the audit, or later reads; deliveries verify with it', async () => {
    const created = await call('POST', '/api/v1/webhooks', tokens.root, {
      url: `${receiver.url}?token=receiver-side`,
      allowInsecureHttp: true,
      events: ['grant.active'],
    });
    expect(created.statusCode, created.body).toBe(201);
    expect(created.headers['cache-control']).toBe('no-store');
    const { webhook, secret } = created.json() as { webhook: { id: string }; secret: string };
    expect(secret).toMatch(/^whsec_/);
    for (const res of [await call('GET', '/api/v1/webhooks', tokens.root), await call('GET', `/api/v1/webhooks/${webhook.id}`, tokens.root)]) {
      expect(res.statusCode).toBe(200);
      expect(res.body).not.toContain(secret.slice(6));
    }
    const [event] = await audited('webhook.created');
    expect(JSON.stringify(event)).not.toContain(secret.slice(6));
    expect(JSON.stringify(event)).not.toContain('receiver-side');

    const asked = await call('POST', '/api/v1/requests', tokens.alice, { target: 'prod-db', entitlement: 'readonly', duration: '1h', reason: 'a look' });
    expect(asked.statusCode, asked.body).toBe(201);
    const [received] = await receiver.waitFor(1);
    expect(new Webhook(secret).verify(received!.body, received!.headers)).toMatchObject({ type: 'grant.active', data: { requester: 'alice' } });
    let deliveries = (await call('GET', `/api/v1/webhooks/${webhook.id}/deliveries`, tokens.rootRead)).json() as {
      deliveries: { id: string; status: string }[];
    };
    for (let i = 0; i < 100 && deliveries.deliveries[0]?.status !== 'sent'; i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      deliveries = (await call('GET', `/api/v1/webhooks/${webhook.id}/deliveries`, tokens.rootRead)).json() as typeof deliveries;
    }
    expect(deliveries.deliveries).toEqual([expect.objectContaining({ status: 'sent', event: 'grant.active', attempts: 1, lastStatus: 200 })]);

    const replay = await call('POST', `/api/v1/webhooks/${webhook.id}/replay`, tokens.root, { delivery: deliveries.deliveries[0]!.id });
    expect(replay.statusCode, replay.body).toBe(200);
    await receiver.waitFor(2);
    expect(receiver.received[1]!.headers['webhook-id']).toBe(deliveries.deliveries[0]!.id);
    expect(await audited('webhook.replayed')).toEqual([expect.objectContaining({ actor: 'root', data: expect.objectContaining({ count: 1 }) })]);

    const removed = await call('DELETE', `/api/v1/webhooks/${webhook.id}`, tokens.root);
    expect(removed.statusCode).toBe(204);
    expect((await call('GET', `/api/v1/webhooks/${webhook.id}`, tokens.root)).statusCode).toBe(404);
    expect(await audited('webhook.deleted')).toEqual([expect.objectContaining({ actor: 'root' })]);
  });

  it('refuses bad input with 400 and writes nothing', async () => {
    const bad: object[] = [
      { url: 'http://hooks.example.com/x' },
      { url: 'https://hooks.example.com/x', events: ['grant.exploded'] },
      { url: 'https://hooks.example.com/x', extra: true },
      { url: `https://hooks.example.com/${'a'.repeat(3000)}` },
      { url: 'https://hooks.example.com/x', description: 'x'.repeat(201) },
      {},
    ];
    for (const body of bad) {
      const res = await call('POST', '/api/v1/webhooks', tokens.root, body);
      expect(res.statusCode, JSON.stringify(body).slice(0, 80)).toBe(400);
      expect(res.json()).toMatchObject({ code: 'validation_failed' });
    }
    expect(((await call('GET', '/api/v1/webhooks', tokens.root)).json() as { webhooks: unknown[] }).webhooks).toEqual([]);
    const plain = await call('POST', '/api/v1/webhooks', tokens.root, { url: 'http://hooks.example.com/x' });
    expect(plain.json().detail ?? plain.body).toMatch(/allowInsecureHttp/);
    for (const [url, body] of [
      ['/api/v1/webhooks/not-an-id/replay', { delivery: 'whd_00000000000000000000000000' }],
      [`/api/v1/webhooks/${someId}/replay`, { delivery: 'ntf_00000000000000000000000000' }],
      [`/api/v1/webhooks/${someId}/replay`, { from: 'whd_00000000000000000000000000' }],
      [`/api/v1/webhooks/${someId}/replay`, {}],
    ] as const) {
      expect((await call('POST', url, tokens.root, body)).statusCode, `${url} ${JSON.stringify(body)}`).toBe(400);
    }
    expect((await call('POST', `/api/v1/webhooks/${someId}/replay`, tokens.root, { delivery: 'whd_00000000000000000000000000' })).statusCode).toBe(404);
    expect((await call('GET', `/api/v1/webhooks/${someId}/deliveries?limit=0`, tokens.root)).statusCode).toBe(400);
    expect((await call('DELETE', `/api/v1/webhooks/${someId}`, tokens.root)).statusCode).toBe(404);
  });
});
