import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeEachStore } from '../../../test/support/stores.js';
import { TEST_CONFIG } from '../../../test/support/engine.js';
import { authFor } from '../../../test/support/auth-service.js';
import { notificationsYaml, startSmtpServer, type TestSmtpServer } from '../../../test/support/smtp.js';
import { createUser, issueApiToken } from '../../auth/index.js';
import { parseConfig } from '../../config/index.js';
import { connectorRegistry, NoopConnector } from '../../connectors/index.js';
import { Engine } from '../../engine/index.js';
import { setUserEmail } from '../../store/index.js';
import { buildApiServer, type ApiServer } from '../index.js';

describeEachStore('notification routes (security)', ({ store }) => {
  let smtp: TestSmtpServer;
  let engine: Engine;
  let app: ApiServer;
  const tokens: Record<string, string> = {};
  beforeAll(async () => {
    smtp = await startSmtpServer({ requireAuth: true });
    const dir = mkdtempSync(join(tmpdir(), 'lapse-notify-api-'));
    writeFileSync(join(dir, 'ca.pem'), smtp.pki.caPem);
    const yaml = `${TEST_CONFIG}\n${notificationsYaml(smtp, join(dir, 'ca.pem'), '    - { events: [request.pending], channels: [mail] }')}`;
    engine = new Engine({
      store: store(),
      config: parseConfig(yaml, join(dir, 'lapse.yaml'), { SMTP_PASSWORD: smtp.password }),
      connectors: connectorRegistry([new NoopConnector()]),
    });
    await engine.start();
    app = await buildApiServer({ engine, auth: authFor(engine), version: 'test' });
    const db = store().db;
    const now = new Date();
    const issue = async (name: string, groups: string[], scopes: string[]) => {
      const user = (await db.selectFrom('users').select('id').where('name', '=', name).executeTakeFirst()) ?? (await createUser(db, { name, groups }, now));
      return (await issueApiToken(db, { userId: user.id, name: 't', scopes, expiresInMs: 3_600_000 }, now)).token;
    };
    tokens.alice = await issue('alice', ['sre'], ['read', 'request']);
    tokens.aliceRead = await issue('alice', ['sre'], ['read']);
    tokens.bob = await issue('bob', ['sre-leads'], ['read', 'request', 'approve']);
    tokens.rootRead = await issue('root', ['admins'], ['read']);
    tokens.root = await issue('root', ['admins'], ['admin']);
    await setUserEmail(db, 'bob', 'bob@example.test');
    await setUserEmail(db, 'root', 'root@example.test');
  });
  afterAll(async () => {
    await app?.close();
    await engine?.stop();
    await smtp?.close();
  });

  const call = (method: 'GET' | 'PUT' | 'POST', url: string, token?: string, payload?: object) =>
    app.inject({ method, url, ...(payload ? { payload } : {}), headers: token ? { authorization: `Bearer ${token}` } : {} });
  const audited = async (action: string) => {
    const rows = await store().db.selectFrom('audit_events').select('payload').orderBy('seq').execute();
    return rows.map((r) => JSON.parse(r.payload) as { action: string; actor: string; data: Record<string, unknown> }).filter((e) => e.action === action);
  };

  it('refuses every route without valid credentials', async () => {
    for (const [method, url] of [
      ['GET', '/api/v1/notifications/deliveries'],
      ['GET', '/api/v1/notifications/channels'],
      ['POST', '/api/v1/notifications/test'],
      ['GET', '/api/v1/me/notification-preferences'],
      ['PUT', '/api/v1/me/notification-preferences'],
    ] as const) {
      for (const token of [undefined, 'lapse_not-a-token']) {
        const res = await call(method, url, token, method === 'GET' ? undefined : {});
        expect(res.statusCode, `${method} ${url}`).toBe(401);
        expect(res.json()).toMatchObject({ code: 'unauthenticated' });
      }
    }
  });

  it('shows deliveries and sends test messages for admins only', async () => {
    const refused = await call('GET', '/api/v1/notifications/deliveries', tokens.alice);
    expect(refused.statusCode).toBe(403);
    expect(await audited('notifications.list_refused')).toEqual([expect.objectContaining({ actor: 'alice' })]);
    expect((await call('GET', '/api/v1/notifications/channels', tokens.bob)).statusCode).toBe(403);
    const channels = await call('GET', '/api/v1/notifications/channels', tokens.rootRead);
    expect(channels.json()).toEqual({ channels: [{ name: 'mail', type: 'email', retryAttempts: 3 }], rules: 1 });
    expect(channels.body).not.toContain(smtp.password);
    expect((await call('POST', '/api/v1/notifications/test', tokens.bob, { channel: 'mail' })).statusCode).toBe(403);
    expect((await call('POST', '/api/v1/notifications/test', tokens.rootRead, { channel: 'mail' })).statusCode).toBe(403);
    expect(await audited('notifications.test_sent')).toEqual([]);
    expect(smtp.received).toEqual([]);
  });

  it('lists what was sent to whom, filtered and paged', async () => {
    const submitted = await call('POST', '/api/v1/requests', tokens.alice, {
      target: 'prod-db',
      entitlement: 'admin',
      duration: '1h',
      reason: 'rotate the primary',
      ticket: 'OPS-9',
    });
    expect(submitted.statusCode, submitted.body).toBe(201);
    await smtp.waitFor(1);
    let list = (await call('GET', '/api/v1/notifications/deliveries?status=sent', tokens.rootRead)).json() as {
      deliveries: { recipient: string; status: string }[];
    };
    for (let i = 0; i < 100 && list.deliveries.length === 0; i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      list = (await call('GET', '/api/v1/notifications/deliveries?status=sent', tokens.rootRead)).json() as typeof list;
    }
    expect(list.deliveries).toEqual([expect.objectContaining({ recipient: 'bob', status: 'sent', event: 'request.pending', attempts: 1, lastError: null })]);
    const page = (await call('GET', '/api/v1/notifications/deliveries?limit=1', tokens.rootRead)).json() as { deliveries: unknown[]; next: string | null };
    expect(page.deliveries).toHaveLength(1);
    expect(page.next).toEqual(expect.any(String));
    for (const bad of ['?status=lost', '?limit=0', '?limit=5000', '?event=request.exploded', '?channel=BAD!', '?extra=1']) {
      expect((await call('GET', `/api/v1/notifications/deliveries${bad}`, tokens.rootRead)).statusCode, bad).toBe(400);
    }
  });

  it('sends a test message over a channel to the admin, and says what is wrong otherwise', async () => {
    const before = smtp.received.length;
    const sent = await call('POST', '/api/v1/notifications/test', tokens.root, { channel: 'mail' });
    expect(sent.statusCode, sent.body).toBe(200);
    expect(sent.json()).toMatchObject({ channel: 'mail', to: 'root@example.test' });
    await smtp.waitFor(before + 1);
    expect(smtp.received.at(-1)).toMatchObject({ to: ['root@example.test'], messageId: `<${sent.json().id}@lapse>` });
    expect(await audited('notifications.test_sent')).toEqual([expect.objectContaining({ actor: 'root', data: expect.objectContaining({ channel: 'mail' }) })]);
    const unknown = await call('POST', '/api/v1/notifications/test', tokens.root, { channel: 'nope' });
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json().hint).toMatch(/configured: mail/);
    expect((await call('POST', '/api/v1/notifications/test', tokens.root, { channel: 'mail', to: 'not an address' })).statusCode).toBe(400);
  });

  it('keeps each person’s own preferences, validated', async () => {
    expect((await call('GET', '/api/v1/me/notification-preferences', tokens.alice)).json()).toEqual({ email: true, quietHours: null, timezone: 'UTC' });
    const prefs = { email: false, quietHours: { start: '22:00', end: '07:00' }, timezone: 'Europe/Berlin' };
    // A read-only credential may look but not change.
    expect((await call('PUT', '/api/v1/me/notification-preferences', tokens.aliceRead, prefs)).statusCode).toBe(403);
    const put = await call('PUT', '/api/v1/me/notification-preferences', tokens.alice, prefs);
    expect(put.statusCode, put.body).toBe(200);
    expect((await call('GET', '/api/v1/me/notification-preferences', tokens.alice)).json()).toEqual(prefs);
    // Someone else's are their own: bob still has the defaults.
    expect((await call('GET', '/api/v1/me/notification-preferences', tokens.bob)).json()).toEqual({ email: true, quietHours: null, timezone: 'UTC' });
    expect(await audited('notifications.preferences_set')).toEqual([expect.objectContaining({ actor: 'alice', subject: 'alice' })]);
    for (const bad of [
      { ...prefs, timezone: 'Mars/Olympus' },
      { ...prefs, quietHours: { start: '25:00', end: '07:00' } },
      { ...prefs, quietHours: { start: '07:00', end: '07:00' } },
      { ...prefs, email: 'yes' },
      { ...prefs, principal: 'bob' },
    ]) {
      const res = await call('PUT', '/api/v1/me/notification-preferences', tokens.alice, bad);
      expect(res.statusCode, JSON.stringify(bad)).toBe(400);
    }
    expect((await call('GET', '/api/v1/me/notification-preferences', tokens.alice)).json()).toEqual(prefs);
  });

  it('exposes pending and failed deliveries as metrics', async () => {
    const metrics = await app.inject({ method: 'GET', url: '/metrics' });
    expect(metrics.body).toMatch(/^lapse_notifications_pending \d+$/m);
    expect(metrics.body).toMatch(/^lapse_notifications_failed 0$/m);
    expect(metrics.body).toMatch(/^lapse_notification_sends_total\{channel="mail",outcome="sent"\} [1-9]/m);
  });
});
