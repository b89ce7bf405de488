import { randomBytes } from 'node:crypto';
import amqp from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../config/index.js';
import { Engine } from '../../engine/index.js';
import { getGrant, getRequest } from '../../store/index.js';
import { offline } from '../../../test/support/environment.js';
import { waitFor } from '../../../test/support/engine.js';
import { openTestStore, type OpenedStore } from '../../../test/support/stores.js';
import { connectorRegistry } from '../types.js';
import { RabbitMqConnector } from './rabbitmq-connector.js';
import { openRabbitScratch, type RabbitScratch } from './testing/scratch-broker.js';

/**
 * The whole path on the real RabbitMQ: an auto-approved request becomes a user with vhost
 * permissions, alice fetches the password once and uses it with amqplib, reconciliation takes the
 * permission of a user an operator set up behind Lapse's back, and release closes alice's open
 * connection and deletes her user.
 */
const AMQP_HOST = process.env.LAPSE_TEST_RABBITMQ_HOST ?? '127.0.0.1';
const AMQP_PORT = Number(process.env.LAPSE_TEST_RABBITMQ_PORT ?? 5672);

describe.skipIf(offline())('rabbitmq connector in the engine', () => {
  let scratch: RabbitScratch;
  let opened: OpenedStore;
  let engine: Engine;
  const alice = { id: 'alice@example.com', kind: 'user' as const, groups: ['sre'] };
  const outsider = `outsider-${randomBytes(3).toString('hex')}`;

  beforeAll(async () => {
    scratch = await openRabbitScratch();
    const yaml = `
version: 1
targets:
  mq:
    connector: rabbitmq
    reconcile: { remediate: true }
    settings: { url: "${scratch.api}", username: ${scratch.lapseUser}, password: "\${env:RABBITMQ_LAPSE_PASSWORD}" }
    entitlements:
      orders: { settings: { vhost: "${scratch.vhost}", configure: "^orders\\\\.", write: "^orders\\\\.", read: "^orders\\\\." } }
policies:
  - name: sre
    subjects: { groups: [sre] }
    entitlements: ["mq/orders"]
    autoApprove: true
scheduler: { pollInterval: 100ms, connectorTimeout: 10s }
`;
    opened = await openTestStore('pglite');
    engine = new Engine({
      store: opened.store,
      config: parseConfig(yaml, 'rabbitmq-engine.yaml', { RABBITMQ_LAPSE_PASSWORD: scratch.password }),
      connectors: connectorRegistry([new RabbitMqConnector()]),
    });
    await engine.start();
  });
  afterAll(async () => {
    await engine?.stop();
    await opened?.close();
    await scratch?.admin('DELETE', `/api/users/${outsider}`);
    // Only if the test failed before release: alice's user from this run.
    const users = (await (await scratch.admin('GET', '/api/users?columns=name')).json()) as { name: string }[];
    for (const { name } of users.filter((u) => u.name.startsWith('lapse_grt_') && u.name.endsWith(':mq:orders:alice@example.com')))
      await scratch.admin('DELETE', `/api/users/${encodeURIComponent(name)}`);
    await scratch?.close();
  });

  const connect = (username: string, password: string) =>
    amqp.connect({ protocol: 'amqp', hostname: AMQP_HOST, port: AMQP_PORT, username, password, vhost: encodeURIComponent(scratch.vhost) });
  const canDeclare = async (username: string, password: string) => {
    const connection = await connect(username, password).catch(() => null);
    if (!connection) return false;
    try {
      await (await connection.createChannel()).assertQueue(`orders.${randomBytes(3).toString('hex')}`, { exclusive: true });
      return true;
    } finally {
      await connection.close().catch(() => undefined);
    }
  };

  it('provisions, hands out the password once, reconciles standing access and revokes on release', async () => {
    const { request } = await engine.submit({ principal: alice, target: 'mq', entitlement: 'orders', durationMs: 3_600_000, reason: 'engine test' });
    const grantId = (await getRequest(opened.store.db, request.id))!.grantId!;
    await waitFor(
      () => getGrant(opened.store.db, grantId),
      (g) => g?.status === 'active',
    );
    const { username, password, vhost } = await engine.fetchCredentials({ grantId, by: alice });
    expect(vhost).toBe(scratch.vhost);
    expect(await canDeclare(username!, password!)).toBe(true);

    // An operator, by hand, with no grant in Lapse.
    await scratch.admin('PUT', `/api/users/${outsider}`, { password: 'outsider-password', tags: '' });
    await scratch.admin('PUT', `/api/permissions/${encodeURIComponent(scratch.vhost)}/${outsider}`, { configure: '.*', write: '.*', read: '.*' });
    expect(await canDeclare(outsider, 'outsider-password')).toBe(true);
    const [report] = await engine.reconcile('mq', { actor: 'test' });
    expect(report!.findings.map((f) => [f.account, f.status])).toEqual([[outsider, 'remediated']]);
    expect(report).toMatchObject({ error: null, remediated: 1 });
    expect(report!.findings).toEqual([expect.objectContaining({ kind: 'standing', status: 'remediated', account: outsider, entitlement: 'orders' })]);
    expect(await canDeclare(outsider, 'outsider-password')).toBe(false);
    expect(await canDeclare(username!, password!)).toBe(true);

    const open = await connect(username!, password!);
    open.on('error', () => undefined);
    const closed = new Promise((resolve) => open.on('close', resolve));
    await engine.release({ grantId, by: alice, reason: 'done' });
    await waitFor(
      () => getGrant(opened.store.db, grantId),
      (g) => g?.status === 'revoked',
    );
    await closed;
    expect(await canDeclare(username!, password!)).toBe(false);
  });
});
