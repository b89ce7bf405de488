import { randomBytes } from 'node:crypto';
import amqp from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TargetConfig } from '../../config/types.js';
import { offline } from '../../../test/support/environment.js';
import { RabbitMqConnector } from './rabbitmq-connector.js';

/**
 * The vault's RabbitMQ side against the real broker (management API on 15672, AMQP on 5672, as in
 * rabbitmq-connector.test.ts): the new password is the one the broker accepts over AMQP, the old
 * one stops working, the user keeps its tags and permissions, connections end at check-in.
 */
const API = process.env.LAPSE_TEST_RABBITMQ_API ?? 'http://127.0.0.1:15672';
const AMQP_HOST = process.env.LAPSE_TEST_RABBITMQ_HOST ?? '127.0.0.1';
const AMQP_PORT = Number(process.env.LAPSE_TEST_RABBITMQ_PORT ?? 5672);
const ADMIN = `Basic ${Buffer.from(`${process.env.LAPSE_TEST_RABBITMQ_USER ?? 'guest'}:${process.env.LAPSE_TEST_RABBITMQ_PASSWORD ?? 'guest'}`).toString('base64')}`;
const run = randomBytes(4).toString('hex');
const LAPSE_USER = `lapse-vault-${run}`;
const LAPSE_PASSWORD = randomBytes(16).toString('hex');
const OPS = `ops-admin-${run}`;
const PLAIN = `plain-user-${run}`;
const FIRST = 'Initial-Ops-Password-0815';
const rotation = new RabbitMqConnector().rotation;
const signal = () => AbortSignal.timeout(10_000);

async function admin(method: string, apiPath: string, body?: unknown): Promise<Response> {
  const response = await fetch(`${API}${apiPath}`, {
    method,
    headers: { authorization: ADMIN, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  if (response.status >= 400 && response.status !== 404) throw new Error(`${method} ${apiPath}: HTTP ${response.status} ${await response.text()}`);
  return response;
}

function target(settings: Record<string, unknown> = {}): TargetConfig {
  return {
    name: 'mq-vault',
    connector: 'rabbitmq',
    description: '',
    settings: { url: API, username: LAPSE_USER, password: LAPSE_PASSWORD, amqpUrl: `amqp://${AMQP_HOST}:${AMQP_PORT}`, ...settings },
    labels: {},
    entitlements: new Map([['ops', { name: 'ops', target: 'mq-vault', description: '', settings: {}, labels: {}, checkout: { account: OPS } as never }]]),
  };
}

/** Whether AMQP accepts the user's password (on the default vhost, where the test users have permissions). */
async function amqpLogin(username: string, password: string): Promise<boolean> {
  try {
    const connection = await amqp.connect({ protocol: 'amqp', hostname: AMQP_HOST, port: AMQP_PORT, username, password, vhost: '/' });
    await connection.close().catch(() => undefined);
    return true;
  } catch (error) {
    if (/ACCESS.REFUSED/.test((error as Error).message)) return false;
    throw error;
  }
}

describe.skipIf(offline())('rabbitmq password rotation (vault)', () => {
  beforeAll(async () => {
    await admin('PUT', `/api/users/${LAPSE_USER}`, { password: LAPSE_PASSWORD, tags: 'administrator' });
    await admin('PUT', `/api/users/${OPS}`, { password: FIRST, tags: 'administrator,monitoring' });
    await admin('PUT', `/api/permissions/%2F/${OPS}`, { configure: '^ops\\.', write: '.*', read: '.*' });
    await admin('PUT', `/api/users/${PLAIN}`, { password: FIRST, tags: '' });
    await admin('PUT', `/api/permissions/%2F/${PLAIN}`, { configure: '', write: '', read: '.*' });
  });
  afterAll(async () => {
    for (const user of [LAPSE_USER, OPS, PLAIN]) await admin('DELETE', `/api/users/${user}`).catch(() => undefined);
  });

  it('verifies by logging in: true when accepted (with or without a management tag), false when refused', async () => {
    expect(await rotation.verifyPassword(target(), OPS, FIRST, signal())).toBe(true);
    expect(await rotation.verifyPassword(target(), PLAIN, FIRST, signal())).toBe(true);
    expect(await rotation.verifyPassword(target(), OPS, 'not-the-password', signal())).toBe(false);
    expect(await rotation.verifyPassword(target(), PLAIN, 'not-the-password', signal())).toBe(false);
    expect(await rotation.verifyPassword(target(), `nobody-${run}`, FIRST, signal())).toBe(false);
  });

  it('rotates to a password AMQP accepts; the old one fails; tags and permissions stay; only a hash is sent', async () => {
    const next = `Rotated-By-Lapse-${randomBytes(8).toString('hex')}`;
    await rotation.rotatePassword(target(), OPS, next, signal());
    expect(await amqpLogin(OPS, next)).toBe(true);
    expect(await amqpLogin(OPS, FIRST)).toBe(false);
    expect(await rotation.verifyPassword(target(), OPS, next, signal())).toBe(true);
    // A retry after a crash sets the same password again: harmless.
    await rotation.rotatePassword(target(), OPS, next, signal());
    expect(await amqpLogin(OPS, next)).toBe(true);
    const user = (await (await admin('GET', `/api/users/${OPS}`)).json()) as { tags: string[]; password_hash: string; hashing_algorithm: string };
    expect([...user.tags].sort()).toEqual(['administrator', 'monitoring']);
    expect(user.hashing_algorithm).toBe('rabbit_password_hashing_sha256');
    const permission = (await (await admin('GET', `/api/permissions/%2F/${OPS}`)).json()) as Record<string, string>;
    expect(permission).toMatchObject({ configure: '^ops\\.', write: '.*', read: '.*' });
    await rotation.rotatePassword(target(), PLAIN, next, signal());
    expect(await amqpLogin(PLAIN, next)).toBe(true);
    expect(((await (await admin('GET', `/api/users/${PLAIN}`)).json()) as { tags: string[] }).tags).toEqual([]);
  });

  it('closes the user’s connections at check-in', async () => {
    const next = `Session-Test-${randomBytes(8).toString('hex')}`;
    await rotation.rotatePassword(target(), OPS, next, signal());
    const connection = await amqp.connect({ protocol: 'amqp', hostname: AMQP_HOST, port: AMQP_PORT, username: OPS, password: next, vhost: '/' });
    connection.on('error', () => undefined);
    const closed = new Promise<string>((resolve) => connection.on('close', (error?: Error) => resolve(error?.message ?? 'closed')));
    await rotation.endSessions(target(), OPS, signal());
    const reason = await Promise.race([closed, new Promise<string>((_, reject) => setTimeout(() => reject(new Error('still open after 5 s')), 5_000))]);
    expect(reason).toMatch(/CONNECTION.FORCED/);
    await rotation.endSessions(target(), OPS, signal());
  });

  it('says clearly when the user does not exist or Lapse cannot log in, without the password', async () => {
    const secret = `Never-In-An-Error-${randomBytes(8).toString('hex')}`;
    const missing = await rotation.rotatePassword(target(), `nobody-${run}`, secret, signal()).catch((e: Error) => e);
    expect(String(missing)).toMatch(/RabbitMQ user "nobody-[0-9a-f]+" does not exist at target mq-vault/);
    expect(JSON.stringify({ m: String(missing), d: (missing as { details?: unknown }).details })).not.toContain(secret);
    const refused = await rotation.rotatePassword(target({ password: 'wrong-lapse-password' }), OPS, secret, signal()).catch((e: Error) => e);
    expect(String(refused)).toMatch(/answered HTTP 401/);
    expect(String(refused)).not.toContain(secret);
  });

  it('refuses to lend Lapse’s own user or an ephemeral one; gives the holder the AMQP URL', () => {
    expect(rotation.validateAccount(target(), LAPSE_USER, 'where')).toEqual([expect.stringMatching(/is the user Lapse itself logs in as/)]);
    expect(rotation.validateAccount(target(), 'lapse_grt_x:mq:ops:alice', 'where')).toEqual([expect.stringMatching(/ephemeral users/)]);
    expect(rotation.validateAccount(target(), '..', 'where')).toEqual([expect.stringMatching(/cannot be addressed/)]);
    expect(rotation.validateAccount(target(), 'a\nb', 'where')).toEqual([expect.stringMatching(/control character/)]);
    expect(rotation.validateAccount(target(), OPS, 'where')).toEqual([]);
    expect(rotation.loginDetails(target(), OPS)).toEqual({ url: `amqp://${AMQP_HOST}:${AMQP_PORT}` });
  });
});
