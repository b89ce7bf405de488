import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Webhook } from 'standardwebhooks';
import { parseConfig } from '../config/index.js';
import type { TeamsChannelConfig } from '../config/types.js';
import { connectorRegistry, NoopConnector } from '../connectors/index.js';
import { isLapseError } from '../domain/errors.js';
import { makeTestPki } from '../connectors/azure-rbac/testing/test-ca.js';
import { Engine } from '../engine/index.js';
import { listDeliveries } from '../store/index.js';
import { alice, TEST_CONFIG, waitFor } from '../../test/support/engine.js';
import { describeEachStore } from '../../test/support/stores.js';
import { sendEventWebhook } from './event-webhook.js';
import { TeamsChannel } from './teams.js';
import { startFakeTeams, type FakeTeams } from './testing/fake-teams.js';
import { startReceiver } from './testing/webhook-receiver.js';
import { RetryLaterError, UndeliverableError, type OutgoingNotification } from './types.js';

const message: OutgoingNotification = {
  id: 'ntf_1',
  event: 'request.pending',
  urgent: false,
  payload: { requester: 'alice', entitlement: 'prod-db/admin', requestId: 'req_1', stage: 'leads', reason: 'rotate' },
  recipient: {},
  portalUrl: 'https://lapse.example.test',
};

describe('Teams channel against a local HTTPS fake', () => {
  let teams: FakeTeams;
  let channel: TeamsChannel;
  beforeAll(async () => {
    teams = await startFakeTeams();
    channel = new TeamsChannel({
      name: 't',
      type: 'teams',
      url: teams.url,
      ca: teams.pki.caPem,
      timeoutMs: 2000,
      retry: { attempts: 3, backoffMinMs: 10, backoffMaxMs: 20 },
    });
  });
  afterAll(() => teams?.close());

  it('posts an Adaptive Card with the portal deep link and no other action', async () => {
    await channel.send(message, AbortSignal.timeout(2000));
    const [call] = await teams.waitFor(1);
    const card = (JSON.parse(call!.body) as { attachments: { content: Record<string, unknown> }[] }).attachments[0]!.content;
    expect(card).toMatchObject({ type: 'AdaptiveCard', version: '1.4' });
    expect(JSON.stringify(card.body)).toContain('alice asks for prod-db/admin');
    expect(card.actions).toEqual([{ type: 'Action.OpenUrl', title: 'Review the request', url: 'https://lapse.example.test/requests/req_1' }]);
  });

  it('gives up on 400, waits for Retry-After on 429, and never puts the URL in an error', async () => {
    teams.answers = [{ status: 429, headers: { 'retry-after': '7' }, body: 'throttled' }, { status: 202 }];
    const throttled = await channel.send(message, AbortSignal.timeout(2000)).catch((e: unknown) => e);
    expect(throttled).toBeInstanceOf(RetryLaterError);
    expect((throttled as RetryLaterError).retryAfterMs).toBe(7000);
    teams.answers = [{ status: 400, body: 'BadRequest: bad card' }];
    const refused = await channel.send(message, AbortSignal.timeout(2000)).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(UndeliverableError);
    expect(String(refused)).toContain('Teams answered 400');
    for (const error of [throttled, refused]) expect(String(error)).not.toContain('s3cr3t');
    teams.answers = [{ status: 202 }];
  });

  it('verifies the server certificate: an untrusted CA is refused', async () => {
    const untrusted = new TeamsChannel({ ...({ name: 't', type: 'teams', url: teams.url, timeoutMs: 2000 } as TeamsChannelConfig), ca: makeTestPki().caPem });
    await expect(untrusted.send(message, AbortSignal.timeout(2000))).rejects.toThrow(/certificate/i);
  });

  it('event webhooks verify TLS too, and sign what they send', async () => {
    const pki = makeTestPki();
    const receiver = await startReceiver({ key: pki.serverKeyPem, cert: pki.serverCertPem });
    try {
      const secret = `whsec_${Buffer.alloc(32, 7).toString('base64')}`;
      const to = { url: receiver.url, secret };
      await expect(sendEventWebhook(to, { id: 'whd_1', body: '{"type":"x"}' }, AbortSignal.timeout(2000))).rejects.toThrow(/certificate/i);
      const answer = await sendEventWebhook({ ...to, ca: pki.caPem }, { id: 'whd_1', body: '{"type":"x"}' }, AbortSignal.timeout(2000));
      expect(answer).toMatchObject({ ok: true, status: 200 });
      expect(new Webhook(secret).verify(receiver.received[0]!.body, receiver.received[0]!.headers)).toEqual({ type: 'x' });
    } finally {
      await receiver.close();
    }
  });
});

describe('Teams channel configuration', () => {
  it('takes the URL by reference only, https only, and says where', () => {
    const yaml = (url: string) =>
      `${TEST_CONFIG}\nnotifications:\n  channels:\n    sre: { type: teams, url: "${url}" }\n  rules:\n    - { events: ["*"], channels: [sre] }\n`;
    const problems = (text: string, env: NodeJS.ProcessEnv = {}) => {
      try {
        parseConfig(text, 'lapse.yaml', env);
        return '';
      } catch (error) {
        return isLapseError(error, 'config_invalid') ? ((error.details.problems as string[] | undefined) ?? [error.message]).join('\n') : String(error);
      }
    };
    expect(problems(yaml('https://x.webhook.office.com/webhookb2/abc'))).toMatch(/notifications\.channels\.sre\.url: .*reference/);
    expect(problems(yaml('${env:TEAMS_URL}'), { TEAMS_URL: 'http://x.example.com/hook' })).toMatch(/notifications\.channels\.sre\.url: .*https/);
    const config = parseConfig(yaml('${env:TEAMS_URL}'), 'lapse.yaml', { TEAMS_URL: 'https://x.webhook.office.com/webhookb2/abc' });
    expect(config.notifications.channels.get('sre')).toMatchObject({ type: 'teams', url: 'https://x.webhook.office.com/webhookb2/abc', timeoutMs: 10_000 });
    expect(problems(yaml('${env:TEAMS_URL}').replace('type: teams', 'type: pager'))).toMatch(/unknown channel type/);
  });
});

describeEachStore('Teams notifications, end to end', ({ store }) => {
  let teams: FakeTeams;
  let engine: Engine;
  beforeAll(async () => {
    teams = await startFakeTeams();
    const dir = mkdtempSync(join(tmpdir(), 'lapse-teams-'));
    writeFileSync(join(dir, 'ca.pem'), teams.pki.caPem);
    const yaml = `${TEST_CONFIG}
auth: { publicUrl: "https://lapse.example.test" }
notifications:
  channels:
    sre-teams:
      type: teams
      url: "\${env:TEAMS_URL}"
      ca: "\${file:${join(dir, 'ca.pem')}}"
      timeout: 2s
      retry: { attempts: 3, backoff: { min: 50ms, max: 100ms } }
  rules:
    - { events: [request.pending, grant.active], channels: [sre-teams] }
`;
    engine = new Engine({
      store: store(),
      config: parseConfig(yaml, join(dir, 'lapse.yaml'), { TEAMS_URL: teams.url }),
      connectors: connectorRegistry([new NoopConnector()]),
    });
    await engine.start();
  });
  afterAll(async () => {
    await engine?.stop();
    await teams?.close();
  });

  it('posts one card per event to the channel, honouring a 429 Retry-After', async () => {
    teams.answers = [{ status: 429, headers: { 'retry-after': '1' } }, { status: 202 }];
    const started = Date.now();
    const { request } = await engine.submit({
      principal: alice,
      target: 'prod-db',
      entitlement: 'admin',
      durationMs: 3_600_000,
      reason: 'rotate the primary',
      ticket: 'OPS-2',
    });
    await teams.waitFor(2);
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    expect(teams.received[1]!.body).toContain(`https://lapse.example.test/requests/${request.id}`);
    const deliveries = await waitFor(
      () => listDeliveries(store().db, { subject: request.id }),
      (list) => list.length === 1 && list[0]!.status === 'sent',
    );
    expect(deliveries[0]).toMatchObject({ channel: 'sre-teams', recipient: 'channel', attempts: 2 });
    for (const d of deliveries) expect(String(d.lastError)).not.toContain('s3cr3t');
  });
});
