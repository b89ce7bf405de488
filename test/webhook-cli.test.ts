import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Webhook } from 'standardwebhooks';
import { startReceiver, type TestReceiver } from '../src/notify/testing/webhook-receiver.js';
import { cliHome, runLapse, startLapseServer, type LapseServer } from './support/lapse-server.js';

const home = cliHome();
afterAll(() => home.remove());

describe('lapse webhook ls|add|rm|deliveries|replay', { timeout: 180_000 }, () => {
  let receiver: TestReceiver;
  let server: LapseServer;
  beforeAll(async () => {
    receiver = await startReceiver();
    server = await startLapseServer();
  });
  afterAll(async () => {
    await server?.close();
    await receiver?.close();
  });

  const lapse = async (user: string, args: string[], scopes: ('read' | 'request' | 'approve' | 'admin')[] = ['admin']) =>
    runLapse(['--json', ...args], { HOME: home.dir, LAPSE_CONFIG_DIR: home.dir, LAPSE_SERVER: server.url, LAPSE_TOKEN: await server.token(user, scopes) });

  it('adds a subscription (secret once), lists, shows deliveries, replays and removes it', async () => {
    const added = await lapse('root', ['webhook', 'add', receiver.url, '--allow-insecure-http', '--event', 'grant.active', '--description', 'siem']);
    expect(added.code, added.stderr).toBe(0);
    const { webhook, secret } = JSON.parse(added.stdout) as { webhook: { id: string }; secret: string };
    expect(secret).toMatch(/^whsec_/);
    const listed = await lapse('root', ['webhook', 'ls']);
    expect(JSON.parse(listed.stdout)).toEqual([expect.objectContaining({ id: webhook.id, events: ['grant.active'], description: 'siem' })]);
    expect(listed.stdout).not.toContain(secret.slice(6));

    const asked = await lapse('alice', ['request', 'prod-db/readonly', '--for', '1h', '--reason', 'a look'], ['read', 'request']);
    expect(asked.code, asked.stderr).toBe(0);
    const [call] = await receiver.waitFor(1);
    expect(new Webhook(secret).verify(call!.body, call!.headers)).toMatchObject({ type: 'grant.active' });

    let deliveries: { id: string; status: string }[] = [];
    for (let i = 0; i < 50 && deliveries[0]?.status !== 'sent'; i++) {
      deliveries = JSON.parse((await lapse('root', ['webhook', 'deliveries', webhook.id])).stdout) as typeof deliveries;
    }
    expect(deliveries).toEqual([expect.objectContaining({ status: 'sent', event: 'grant.active' })]);
    const replayed = await lapse('root', ['webhook', 'replay', webhook.id, '--delivery', deliveries[0]!.id]);
    expect(replayed.code, replayed.stderr).toBe(0);
    await receiver.waitFor(2);
    expect(receiver.received[1]!.headers['webhook-id']).toBe(deliveries[0]!.id);

    expect((await lapse('root', ['webhook', 'rm', webhook.id])).code).toBe(0);
    expect(JSON.parse((await lapse('root', ['webhook', 'ls'])).stdout)).toEqual([]);
  });

  it('says why when it cannot: not an admin, bad input, unknown id', async () => {
    expect((await lapse('alice', ['webhook', 'ls'], ['read', 'request'])).code).toBe(6);
    const plain = await lapse('root', ['webhook', 'add', 'http://hooks.example.com/x']);
    expect(plain.code).toBe(2);
    expect(JSON.parse(plain.stderr).error.problems.join('\n')).toMatch(/allowInsecureHttp/);
    expect((await lapse('root', ['webhook', 'add', 'https://hooks.example.com/x', '--event', 'grant.exploded'])).code).toBe(2);
    expect((await lapse('root', ['webhook', 'rm', 'nope'])).code).toBe(2);
    expect((await lapse('root', ['webhook', 'rm', 'whk_00000000000000000000000000'])).code).toBe(3);
    expect((await lapse('root', ['webhook', 'replay', 'whk_00000000000000000000000000'])).code).toBe(2);
    expect(JSON.parse((await lapse('root', ['webhook', 'ls'])).stdout)).toEqual([]);
  });
});
