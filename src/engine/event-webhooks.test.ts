import { afterAll, beforeAll, expect, it } from 'vitest';
import { Webhook } from 'standardwebhooks';
import { parseConfig } from '../config/index.js';
import { connectorRegistry, NoopConnector } from '../connectors/index.js';
import { LapseError } from '../domain/errors.js';
import { startReceiver, type TestReceiver } from '../notify/testing/webhook-receiver.js';
import { alice, bob, carol, root, TEST_CONFIG, waitFor } from '../../test/support/engine.js';
import { describeEachStore } from '../../test/support/stores.js';
import { Engine } from './engine.js';

const YAML = `${TEST_CONFIG}
auth: { publicUrl: "https://lapse.example.test" }
notifications:
  webhooks: { timeout: 2s, retry: { attempts: 3, backoff: { min: 50ms, max: 100ms } } }
`;

describeEachStore('outbound event webhooks', ({ store }) => {
  let receiver: TestReceiver;
  let engine: Engine;
  beforeAll(async () => {
    receiver = await startReceiver();
    engine = new Engine({ store: store(), config: parseConfig(YAML, 'lapse.yaml', {}), connectors: connectorRegistry([new NoopConnector()]) });
    await engine.start();
  });
  afterAll(async () => {
    await engine?.stop();
    await receiver?.close();
  });

  it('sends every lifecycle event, signed so the stock Standard Webhooks verifier accepts it', async () => {
    const { subscription, secret } = await engine.webhooks.create(root, { url: receiver.url, allowInsecureHttp: true, description: 'siem' });
    expect(secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    expect(JSON.stringify(await engine.webhooks.list())).not.toContain(secret);
    const sealed = await store().db.selectFrom('webhook_subscriptions').select('secret_sealed').executeTakeFirstOrThrow();
    expect(sealed.secret_sealed).not.toContain(secret.slice(6));

    const { request } = await engine.submit({
      principal: alice,
      target: 'prod-db',
      entitlement: 'admin',
      durationMs: 3_600_000,
      reason: 'rotate the primary',
      ticket: 'OPS-1',
    });
    await engine.review({ requestId: request.id, reviewer: bob, decision: 'approve' });
    await engine.review({ requestId: request.id, reviewer: carol, decision: 'approve' });
    const calls = await receiver.waitFor(4);
    const verifier = new Webhook(secret);
    const events = calls.map((call) => verifier.verify(call.body, call.headers) as { type: string; timestamp: string; data: Record<string, unknown> });
    expect(events.map((e) => e.type)).toEqual(expect.arrayContaining(['request.pending', 'request.decided', 'grant.active']));
    const pending = events.find((e) => e.type === 'request.pending')!;
    expect(pending.data).toMatchObject({ requestId: request.id, requester: 'alice', entitlement: 'prod-db/admin', reason: 'rotate the primary' });
    expect(calls[0]!.headers['webhook-id']).toMatch(/^whd_/);
    expect(calls[0]!.headers['content-type']).toBe('application/json');
    // A forged body, or the right body under another secret, does not verify.
    expect(() => verifier.verify(calls[0]!.body.replace('alice', 'mallory'), calls[0]!.headers)).toThrow();
    expect(() => new Webhook(`whsec_${Buffer.alloc(32, 1).toString('base64')}`).verify(calls[0]!.body, calls[0]!.headers)).toThrow();

    const deliveries = await waitFor(
      () => engine.webhooks.deliveries(subscription.id),
      (list) => list.length >= 4 && list.every((d) => d.status === 'sent'),
    );
    expect(deliveries[0]).toMatchObject({ attempts: 1, lastStatus: 200, lastError: null });
    await engine.webhooks.remove(root, subscription.id);
  });

  it('retries with backoff, honours Retry-After, gives up visibly, and replays the same id', async () => {
    receiver.received.length = 0;
    const { subscription, secret } = await engine.webhooks.create(root, { url: receiver.url, allowInsecureHttp: true, events: ['grant.active'] });
    receiver.answers = [{ status: 429, headers: { 'retry-after': '1' } }, { status: 200 }];
    const started = Date.now();
    await engine.submit({ principal: alice, target: 'prod-db', entitlement: 'readonly', durationMs: 3_600_000, reason: 'look' });
    const calls = await receiver.waitFor(2);
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    expect(calls[0]!.headers['webhook-id']).toBe(calls[1]!.headers['webhook-id']);
    expect(calls.map((c) => (JSON.parse(c.body) as { type: string }).type)).toEqual(['grant.active', 'grant.active']);

    receiver.answers = [{ status: 500, body: 'down' }];
    await engine.submit({ principal: alice, target: 'prod-db', entitlement: 'readonly', durationMs: 3_600_000, reason: 'look again' });
    const failed = await waitFor(
      () => engine.webhooks.deliveries(subscription.id, { status: 'failed' }),
      (list) => list.length === 1,
    );
    expect(failed[0]).toMatchObject({ attempts: 3, lastStatus: 500 });
    expect(failed[0]!.lastError).toMatch(/gave up after 3 attempts: the receiver answered 500: down/);

    receiver.answers = [{ status: 204 }];
    const before = receiver.received.length;
    const { replayed } = await engine.webhooks.replay(root, subscription.id, { delivery: failed[0]!.id });
    expect(replayed).toEqual([failed[0]!.id]);
    await receiver.waitFor(before + 1);
    const again = receiver.received.at(-1)!;
    expect(again.headers['webhook-id']).toBe(failed[0]!.id);
    expect(new Webhook(secret).verify(again.body, again.headers)).toMatchObject({ type: 'grant.active' });
    const all = await waitFor(
      () => engine.webhooks.deliveries(subscription.id),
      (list) => list.every((d) => d.status === 'sent'),
    );
    expect(all.find((d) => d.id === failed[0]!.id)).toMatchObject({ replays: 1, attempts: 1, lastStatus: 204 });

    // A range by id re-sends both, oldest first.
    const range = await engine.webhooks.replay(root, subscription.id, { from: all.at(-1)!.id, to: all[0]!.id });
    expect(range.replayed).toEqual([all.at(-1)!.id, all[0]!.id]);
    await engine.webhooks.remove(root, subscription.id);
  });

  it('refuses bad input with a clear error and writes nothing', async () => {
    const count = async () => (await engine.webhooks.list()).length;
    const before = await count();
    const refused = async (input: object, pattern: RegExp) => {
      const error = await engine.webhooks.create(root, input as never).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(LapseError);
      expect((error as LapseError).code).toBe('validation_failed');
      expect((error as LapseError).message).toMatch(pattern);
    };
    await refused({ url: 'http://hooks.example.com/x' }, /url: plain http sends events unencrypted/);
    await refused({ url: receiver.url }, /allowInsecureHttp/);
    await refused({ url: 'https://user:pw@hooks.example.com/x' }, /must not carry credentials/);
    await refused({ url: 'ftp://hooks.example.com/x' }, /must start with https/);
    await refused({ url: 'not a url' }, /is not a URL/);
    await refused({ url: `https://x.example.com/${'a'.repeat(3000)}` }, /url/);
    await refused({ url: 'https://x.example.com', events: ['grant.exploded'] }, /events/);
    await refused({ url: 'https://x.example.com', secret: 'mine' }, /secret|Unrecognized/i);
    await refused({ url: 'https://x.example.com', description: 'a\u0007b' }, /description/);
    expect(await count()).toBe(before);
    const missing = await engine.webhooks
      .replay(root, 'whk_00000000000000000000000000', { delivery: 'whd_00000000000000000000000000' })
      .catch((e: unknown) => e);
    expect(missing).toMatchObject({ code: 'not_found' });
    const { subscription } = await engine.webhooks.create(root, { url: 'https://hooks.example.com/lapse' });
    const backwards = await engine.webhooks
      .replay(root, subscription.id, { from: 'whd_10000000000000000000000000', to: 'whd_00000000000000000000000000' })
      .catch((e: unknown) => e);
    expect(backwards).toMatchObject({ code: 'validation_failed' });
    await engine.webhooks.remove(root, subscription.id);
    await expect(engine.webhooks.remove(root, subscription.id)).rejects.toMatchObject({ code: 'not_found' });
  });
});
