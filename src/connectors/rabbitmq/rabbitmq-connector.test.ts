import { randomBytes } from 'node:crypto';
import amqp, { type ChannelModel } from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TargetConfig } from '../../config/types.js';
import { newId } from '../../domain/ids.js';
import { offline } from '../../../test/support/environment.js';
import { connectorConformance } from '../testing/conformance.js';
import type { GrantSpec } from '../types.js';
import { RabbitMqConnector } from './rabbitmq-connector.js';

/**
 * Against the real RabbitMQ: the management API at LAPSE_TEST_RABBITMQ_API (default
 * http://127.0.0.1:15672, plugin enabled by .ci/run) as LAPSE_TEST_RABBITMQ_USER/PASSWORD
 * (default guest/guest), and AMQP at LAPSE_TEST_RABBITMQ_HOST:PORT (127.0.0.1:5672) with amqplib
 * as the requester's client.
 */
const API = process.env.LAPSE_TEST_RABBITMQ_API ?? 'http://127.0.0.1:15672';
const AMQP_HOST = process.env.LAPSE_TEST_RABBITMQ_HOST ?? '127.0.0.1';
const AMQP_PORT = Number(process.env.LAPSE_TEST_RABBITMQ_PORT ?? 5672);
const ADMIN = `Basic ${Buffer.from(`${process.env.LAPSE_TEST_RABBITMQ_USER ?? 'guest'}:${process.env.LAPSE_TEST_RABBITMQ_PASSWORD ?? 'guest'}`).toString('base64')}`;
const run = randomBytes(4).toString('hex');
const VHOST = `lapse-test-${run}`;
const HOSTILE_VHOST = `lapse test/${run} ü'"; DROP %2F`;
const LAPSE_USER = `lapse-admin-${run}`;
const LAPSE_PASSWORD = randomBytes(16).toString('hex');

const connector = new RabbitMqConnector();

async function admin(method: string, apiPath: string, body?: unknown): Promise<Response> {
  const response = await fetch(`${API}${apiPath}`, {
    method,
    headers: { authorization: ADMIN, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  if (response.status >= 400 && response.status !== 404) throw new Error(`${method} ${apiPath}: HTTP ${response.status} ${await response.text()}`);
  return response;
}

function target(settings: Record<string, unknown> = {}, entitlementSettings: Record<string, unknown> = {}): TargetConfig {
  return {
    name: 'mq',
    connector: 'rabbitmq',
    description: '',
    settings: { url: API, username: LAPSE_USER, password: LAPSE_PASSWORD, timeoutMs: 5_000, amqpUrl: `amqp://${AMQP_HOST}:${AMQP_PORT}`, ...settings },
    labels: {},
    entitlements: new Map([
      [
        'orders',
        {
          name: 'orders',
          target: 'mq',
          description: '',
          settings: { vhost: VHOST, configure: '^orders\\.', write: '^orders\\.', read: '^orders\\.', ...entitlementSettings },
          labels: {},
        },
      ],
    ]),
  };
}

function grant(overrides: Partial<GrantSpec> = {}): GrantSpec {
  const t = overrides.target ?? target();
  return {
    grantId: newId('grant'),
    principalId: `rmq-${run}-${randomBytes(3).toString('hex')}`,
    target: t,
    entitlement: t.entitlements.get('orders')!,
    durationMs: 60_000,
    notAfter: new Date(Date.now() + 60_000),
    parameters: {},
    ...overrides,
  };
}

function connect(credentials: Readonly<Record<string, string>>): Promise<ChannelModel> {
  // NB. amqplib URL-unescapes the vhost even when given as an option, so it must be escaped.
  return amqp.connect({
    protocol: 'amqp',
    hostname: AMQP_HOST,
    port: AMQP_PORT,
    username: credentials.username,
    password: credentials.password,
    vhost: encodeURIComponent(credentials.vhost!),
  });
}

/** Logs in with amqplib and declares a queue the entitlement covers. */
async function canUse(credentials: Readonly<Record<string, string>> | undefined): Promise<boolean> {
  let connection: ChannelModel;
  try {
    connection = await connect(credentials!);
  } catch (error) {
    // No login: 403 ACCESS_REFUSED. Login but no permission on the vhost: the broker closes the
    // connection instead of opening it (amqplib: "Expected ConnectionOpenOk").
    if (/ACCESS.REFUSED|ConnectionOpenOk/.test((error as Error).message)) return false;
    throw error;
  }
  try {
    const channel = await connection.createChannel();
    await channel.assertQueue(`orders.${randomBytes(4).toString('hex')}`, { autoDelete: true, exclusive: true });
    return true;
  } finally {
    await connection.close().catch(() => undefined);
  }
}

describe.skipIf(offline())('rabbitmq connector against the real broker', () => {
  beforeAll(async () => {
    try {
      await admin('GET', '/api/overview');
    } catch (error) {
      throw new Error(
        `the RabbitMQ management API is not reachable at ${API} (${(error as Error).message}); enable it (rabbitmq-plugins enable rabbitmq_management), point LAPSE_TEST_RABBITMQ_API at one, or run npm run test:offline to skip`,
      );
    }
    await admin('PUT', `/api/vhosts/${encodeURIComponent(VHOST)}`);
    await admin('PUT', `/api/vhosts/${encodeURIComponent(HOSTILE_VHOST)}`);
    // Lapse's own user: the administrator tag and no vhost permissions, as docs/connectors/rabbitmq.md says.
    await admin('PUT', `/api/users/${LAPSE_USER}`, { password: LAPSE_PASSWORD, tags: 'administrator' });
  });

  afterAll(async () => {
    await admin('DELETE', `/api/vhosts/${encodeURIComponent(VHOST)}`).catch(() => undefined);
    await admin('DELETE', `/api/vhosts/${encodeURIComponent(HOSTILE_VHOST)}`).catch(() => undefined);
    const users = (await (await admin('GET', '/api/users?columns=name')).json()) as { name: string }[];
    for (const { name } of users.filter((u) => u.name.includes(run) || u.name.includes(`rmq-${run}`)))
      await admin('DELETE', `/api/users/${encodeURIComponent(name)}`);
  });

  connectorConformance({
    name: 'rabbitmq',
    connector: () => connector,
    grant,
    hasAccess: async (_grant, provisioned) => canUse(provisioned.credentials),
    createUnmanaged: async () => {
      const name = `outsider-${run}-${randomBytes(3).toString('hex')}`;
      await admin('PUT', `/api/users/${name}`, { password: 'outsider-password', tags: '' });
      await admin('PUT', `/api/permissions/${encodeURIComponent(VHOST)}/${name}`, { configure: '.*', write: '.*', read: '.*' });
      return name;
    },
  });

  it('gives amqplib exactly the entitlement: its queues yes, others no', async () => {
    const g = grant();
    const provisioned = await connector.provision(g, AbortSignal.timeout(10_000));
    try {
      expect(provisioned.credentials).toMatchObject({ username: expect.stringMatching(/^lapse_grt_/), vhost: VHOST, url: `amqp://${AMQP_HOST}:${AMQP_PORT}` });
      expect(JSON.stringify(provisioned.handle)).not.toContain(provisioned.credentials!.password);
      const connection = await connect(provisioned.credentials!);
      try {
        const channel = await connection.createChannel();
        channel.on('error', () => undefined);
        await channel.assertQueue(`orders.${run}`, { autoDelete: true, exclusive: true });
        await expect(channel.assertQueue(`billing.${run}`, { autoDelete: true })).rejects.toThrow(/ACCESS_REFUSED/);
      } finally {
        await connection.close().catch(() => undefined);
      }
      await expect(connect({ ...provisioned.credentials!, vhost: '/' })).rejects.toThrow(/ConnectionOpenOk/);
    } finally {
      await connector.revoke(g, provisioned.handle, AbortSignal.timeout(10_000));
    }
  });

  it('after revoke, a new connection is refused and the open one is closed by the broker', async () => {
    const g = grant();
    const provisioned = await connector.provision(g, AbortSignal.timeout(10_000));
    const connection = await connect(provisioned.credentials!);
    connection.on('error', () => undefined);
    const closed = new Promise<string>((resolve) => connection.on('close', (error?: Error) => resolve(error?.message ?? 'closed')));
    await (await connection.createChannel()).assertQueue(`orders.open.${run}`, { autoDelete: true, exclusive: true });
    await connector.revoke(g, provisioned.handle, AbortSignal.timeout(10_000));
    const reason = await Promise.race([
      closed,
      new Promise<string>((_, reject) => setTimeout(() => reject(new Error('connection still open 5 s after revoke')), 5_000)),
    ]);
    expect(reason).toMatch(/CONNECTION.FORCED/);
    await expect(connect(provisioned.credentials!)).rejects.toThrow(/ACCESS.REFUSED/);
  });

  it('sets a fresh password on a repeated provision', async () => {
    const g = grant();
    const first = await connector.provision(g, AbortSignal.timeout(10_000));
    const second = await connector.provision(g, AbortSignal.timeout(10_000));
    try {
      expect(second.credentials!.password).not.toBe(first.credentials!.password);
      expect(await canUse(first.credentials)).toBe(false);
      expect(await canUse(second.credentials)).toBe(true);
    } finally {
      await connector.revoke(g, second.handle, AbortSignal.timeout(10_000));
    }
  });

  it('percent-encodes hostile vhost and principal names into the API paths', async () => {
    const t = target({}, { vhost: HOSTILE_VHOST });
    const principalId = `o'brien"/../users/%2F ü ${run}`;
    const g = grant({ target: t, principalId });
    const provisioned = await connector.provision(g, AbortSignal.timeout(10_000));
    try {
      expect(provisioned.credentials!.vhost).toBe(HOSTILE_VHOST);
      expect(await canUse(provisioned.credentials)).toBe(true);
      const listed = await connector.listAccess(t, AbortSignal.timeout(10_000));
      expect(listed).toContainEqual({ account: provisioned.credentials!.username, principalId, entitlement: 'orders', grantId: g.grantId });
      expect((await admin('GET', '/api/users/guest')).status).toBe(200);
    } finally {
      await connector.revoke(g, provisioned.handle, AbortSignal.timeout(10_000));
    }
    expect(await canUse(provisioned.credentials)).toBe(false);
    expect(connector.validateSettings(target({}, { vhost: '..' }))).toEqual([
      expect.stringMatching(/settings\.vhost: "\.\." cannot be addressed through the management API/),
    ]);
    expect(connector.validateSettings(target({}, { vhost: 'a\nb', tags: ['administrator'], read: 42, policy: 'x' }))).toEqual([
      expect.stringMatching(/settings\.policy: unknown setting/),
      expect.stringMatching(/settings\.vhost: contains a control character/),
      expect.stringMatching(/settings\.read: must be a regular expression/),
      expect.stringMatching(/settings\.tags\[0\]: "administrator" lets the user run the broker; set allowAdministrator: true/),
    ]);
  });

  it('elevates an existing user on the vhost and takes it away again, closing its connections', async () => {
    const user = `elev-${run}`;
    const password = randomBytes(12).toString('hex');
    await admin('PUT', `/api/users/${user}`, { password, tags: '' });
    const principalId = `rmq-${run}-alice`;
    const t = target({ accounts: { [principalId]: user } }, { mode: 'elevate' });
    const g = grant({ target: t, principalId });
    const own = { username: user, password, vhost: VHOST };
    expect(await canUse(own)).toBe(false);
    const provisioned = await connector.provision(g, AbortSignal.timeout(10_000));
    expect(provisioned).toEqual({ handle: { account: user, vhost: VHOST, mode: 'elevate' } });
    expect(connector.accessKey(g)).toBe(`mq/${VHOST}/${user}`);
    expect(await canUse(own)).toBe(true);
    expect(await connector.listAccess(t, AbortSignal.timeout(10_000))).toContainEqual({ account: user, principalId, entitlement: 'orders', grantId: null });
    const connection = await connect(own);
    connection.on('error', () => undefined);
    const closed = new Promise((resolve) => connection.on('close', resolve));
    await connector.revoke(g, provisioned.handle, AbortSignal.timeout(10_000));
    await closed;
    expect(await canUse(own)).toBe(false);
    expect((await admin('GET', `/api/users/${user}`)).status).toBe(200);

    await admin('PUT', `/api/permissions/${encodeURIComponent(VHOST)}/${user}`, { configure: '', write: '', read: '.*' });
    await expect(connector.provision(g, AbortSignal.timeout(10_000))).rejects.toMatchObject({
      code: 'conflict',
      message: expect.stringMatching(/already has other permissions on vhost/),
    });
    await expect(connector.provision(grant({ target: t, principalId: 'nobody-here' }), AbortSignal.timeout(10_000))).rejects.toThrow(
      /there is no RabbitMQ user "nobody-here"/,
    );
  });

  it('checkTarget names the missing administrator tag and a missing vhost', async () => {
    const weak = `lapse-weak-${run}`;
    const password = randomBytes(12).toString('hex');
    await admin('PUT', `/api/users/${weak}`, { password, tags: 'management' });
    await expect(connector.checkTarget(target({ username: weak, password }), AbortSignal.timeout(10_000))).rejects.toThrow(/lacks the administrator tag/);
    await expect(connector.checkTarget(target({}, { vhost: `missing-${run}` }), AbortSignal.timeout(10_000))).rejects.toThrow(
      /vhost "missing-[0-9a-f]+" of entitlement orders does not exist/,
    );
  });

  it('fails clearly, without the password, on a wrong password or an unreachable API', async () => {
    const wrong = `wrong-${randomBytes(8).toString('hex')}`;
    const error = await connector.listAccess(target({ password: wrong }), AbortSignal.timeout(10_000)).catch((e: unknown) => e as Error);
    expect(String(error)).toMatch(/GET \/api\/users\?columns=name answered HTTP 401/);
    expect(JSON.stringify({ message: String(error), details: (error as { details?: unknown }).details })).not.toContain(wrong);
    await expect(connector.listAccess(target({ url: 'http://127.0.0.1:1' }), AbortSignal.timeout(10_000))).rejects.toThrow(/ECONNREFUSED/);
    expect(connector.validateSettings(target({ url: 'http://mq.example.com:15672' }))).toEqual([
      expect.stringMatching(/settings\.url: plain http to mq\.example\.com/),
    ]);
    const { createServer } = await import('node:http');
    const proxy = createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end('<html>login</html>')).listen(0, '127.0.0.1');
    await new Promise((resolve) => proxy.once('listening', resolve));
    try {
      const url = `http://127.0.0.1:${(proxy.address() as { port: number }).port}`;
      await expect(connector.listAccess(target({ url }), AbortSignal.timeout(10_000))).rejects.toThrow(/answered HTTP 200 with a body that is not JSON/);
    } finally {
      proxy.close();
    }
  });
});
