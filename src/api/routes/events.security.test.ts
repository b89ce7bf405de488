import type { AddressInfo } from 'node:net';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEngine, TEST_CONFIG, type TestEngine } from '../../../test/support/engine.js';
import { openEventStream, within } from '../../../test/support/event-stream.js';
import { configWithAuth, createLocalUser, PASSWORD, sessionCookieFrom } from '../../../test/support/sign-in.js';
import { describeEachStore } from '../../../test/support/stores.js';
import { issueApiToken } from '../../auth/index.js';
import { parseConfig } from '../../config/index.js';
import { buildApiServer, type ApiServer } from '../index.js';
import { authFor } from '../../../test/support/auth-service.js';

const YAML = configWithAuth('loginLimits: { perAccountPerHour: 100, perIpPerMinute: 100 }');
/** Short, so a test sees a dead credential's stream closed quickly; the default is 5 s. */
const RECHECK_MS = 300;

describeEachStore('GET /api/v1/events ends with its credential (security)', ({ store }) => {
  let t: TestEngine;
  let app: ApiServer;
  let base = '';
  const ids: Record<string, string> = {};
  const token = async (who: string, expiresInMs: number | null = 3_600_000, scopes: ('read' | 'request' | 'admin')[] = ['read', 'request']) =>
    issueApiToken(store().db, { userId: ids[who]!, name: 'stream', scopes, expiresInMs }, new Date());
  const bearer = (value: string) => ({ authorization: `Bearer ${value}` });
  const ask = (value: string) =>
    fetch(`${base}/api/v1/requests`, {
      method: 'POST',
      headers: { ...bearer(value), 'content-type': 'application/json' },
      body: JSON.stringify({ target: 'prod-db', entitlement: 'readonly', duration: '10m', reason: 'look at a slow query' }),
    });

  beforeAll(async () => {
    t = await startEngine(store(), { yaml: YAML });
    app = await buildApiServer({ engine: t.engine, auth: authFor(t.engine), version: 'test', eventStream: { recheckMs: RECHECK_MS } });
    await app.listen({ host: '127.0.0.1', port: 0 });
    base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    for (const [name, groups] of [
      ['alice', ['sre', 'oncall']],
      ['bob', ['sre']],
      ['root', ['admins']],
    ] as const)
      ids[name] = (await createLocalUser(store(), name, [...groups])).id;
  });
  afterAll(async () => {
    await app.close();
    await t.stop();
  });

  it('closes the stream of a token revoked while it is open', async () => {
    const issued = await token('alice');
    const stream = await openEventStream(`${base}/api/v1/events`, bearer(issued.token));
    expect(stream.status).toBe(200);
    await stream.waitFor(/: connected/);
    expect((await fetch(`${base}/api/v1/tokens/${issued.id}`, { method: 'DELETE', headers: bearer((await token('alice')).token) })).status).toBe(200);
    await within(stream.ended, RECHECK_MS * 10, 'the stream of the revoked token ending');
    expect(stream.text()).toMatch(/event: closed\ndata: \{"reason":"unauthenticated"\}/);
  });

  it('closes the stream of a token when it expires', async () => {
    const issued = await token('alice', 1_500);
    const stream = await openEventStream(`${base}/api/v1/events`, bearer(issued.token));
    await stream.waitFor(/: connected/);
    await within(stream.ended, 1_500 + RECHECK_MS * 10, 'the stream of the expired token ending');
  });

  it('closes the stream of a session that signs out, and of a user who is disabled', async () => {
    const login = await fetch(`${base}/api/v1/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'bob', password: PASSWORD }),
    });
    const cookie = `lapse_session=${sessionCookieFrom({ cookies: login.headers.getSetCookie().map((c) => ({ name: c.split('=')[0]!, value: c.split('=')[1]!.split(';')[0]! })) })}`;
    const { csrfToken } = (await login.json()) as { csrfToken: string };
    const session = await openEventStream(`${base}/api/v1/events`, { cookie });
    expect(session.status).toBe(200);
    const disabled = await openEventStream(`${base}/api/v1/events`, bearer((await token('root', null, ['admin'])).token));
    await Promise.all([session.waitFor(/: connected/), disabled.waitFor(/: connected/)]);
    expect((await fetch(`${base}/api/v1/auth/logout`, { method: 'POST', headers: { cookie, 'x-csrf-token': csrfToken } })).status).toBe(200);
    await within(session.ended, RECHECK_MS * 10, 'the signed-out session stream ending');
    await sql`UPDATE users SET disabled_at = now() WHERE name = 'root'`.execute(store().db);
    try {
      await within(disabled.ended, RECHECK_MS * 10, "the disabled user's stream ending");
    } finally {
      await sql`UPDATE users SET disabled_at = NULL WHERE name = 'root'`.execute(store().db);
    }
  });

  it("stops telling a former admin about other people's requests", async () => {
    const stream = await openEventStream(`${base}/api/v1/events`, bearer((await token('root', null, ['admin'])).token));
    await stream.waitFor(/: connected/);
    const before = (await (await ask((await token('alice')).token)).json()) as { request: { id: string } };
    await stream.waitFor(new RegExp(before.request.id));
    await t.engine.reloadConfig(parseConfig(YAML.replace('admins: { groups: [admins] }', 'admins: { users: [nobody] }'), 'test.yaml', {}));
    try {
      const after = (await (await ask((await token('bob')).token)).json()) as { request: { id: string } };
      // alice's later changes (her grant activating) may still arrive: wait for bob's grant, then look
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      expect(stream.text()).not.toContain(after.request.id);
      stream.close();
    } finally {
      await t.engine.reloadConfig(parseConfig(YAML, 'test.yaml', {}));
    }
  });

  it('checks the credential again before sending a change, not only on the periodic round', async () => {
    const slowApp = await buildApiServer({ engine: t.engine, auth: authFor(t.engine), version: 'test', eventStream: { recheckMs: 600_000 } });
    await slowApp.listen({ host: '127.0.0.1', port: 0 });
    try {
      const issued = await token('alice');
      const stream = await openEventStream(`http://127.0.0.1:${(slowApp.server.address() as AddressInfo).port}/api/v1/events`, bearer(issued.token));
      await stream.waitFor(/: connected/);
      await sql`UPDATE api_tokens SET revoked_at = now() WHERE id = ${issued.id}`.execute(store().db);
      // NB. A credential found good is trusted for at most a second before a change is sent.
      await new Promise((resolve) => setTimeout(resolve, 1_100));
      const mine = (await (await ask((await token('alice')).token)).json()) as { request: { id: string } };
      await within(stream.ended, 3_000, 'the revoked stream ending at the next change');
      expect(stream.text()).not.toContain(mine.request.id);
      expect(stream.text()).toMatch(/event: closed\ndata: \{"reason":"unauthenticated"\}/);
    } finally {
      await slowApp.close();
    }
  });
});

describe('GET /api/v1/events at shutdown', () => {
  describeEachStore('server close', ({ store }) => {
    let t: TestEngine;
    beforeAll(async () => {
      t = await startEngine(store(), { yaml: TEST_CONFIG });
    });
    afterAll(async () => {
      await t.stop();
    });

    it('ends open streams (saying why) so the server closes at once instead of waiting for them', async () => {
      const app = await buildApiServer({ engine: t.engine, auth: authFor(t.engine), version: 'test' });
      await app.listen({ host: '127.0.0.1', port: 0 });
      const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
      const user = await store()
        .db.insertInto('users')
        .values({
          id: 'usr_shutdown',
          name: 'alice',
          kind: 'user',
          groups: JSON.stringify(['sre']),
          password_hash: null,
          created_at: new Date(),
          disabled_at: null,
        })
        .returning('id')
        .executeTakeFirstOrThrow();
      const { token } = await issueApiToken(store().db, { userId: user.id, name: 'stream', scopes: ['read'], expiresInMs: 600_000 }, new Date());
      const streams = await Promise.all([1, 2, 3].map(() => openEventStream(`${base}/api/v1/events`, { authorization: `Bearer ${token}` })));
      await Promise.all(streams.map((s) => s.waitFor(/: connected/)));
      // an idle keep-alive connection too
      expect((await fetch(`${base}/healthz`)).status).toBe(200);
      await within(app.close(), 3_000, 'the server closing');
      for (const stream of streams) {
        await within(stream.ended, 1_000, 'the stream ending');
        expect(stream.text()).toMatch(/event: closed\ndata: \{"reason":"shutdown"\}/);
      }
    });
  });
});
