import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { queryAuditEvents } from '../src/audit/index.js';
import { createUser } from '../src/auth/index.js';
import { SlackFake, type FakeMessage } from '../src/notify/testing/slack-fake.js';
import { startTestApi, type TestApi } from './support/api.js';
import { waitFor } from './support/engine.js';
import { describeEachStore } from './support/stores.js';

const TOKEN = 'xoxb-2222-3333-lapsetestbottoken';
const SECRET = '3f9c0e0b1a2d4c5e6f708192a3b4c5d6';
const dave = { id: 'dave', kind: 'user' as const, groups: ['sre', 'sre-leads'] };

function yaml(fakeUrl: string, dir: string): string {
  writeFileSync(join(dir, 'token'), TOKEN);
  writeFileSync(join(dir, 'secret'), SECRET);
  return `
version: 1
roles:
  admins: { groups: [admins] }
  auditors: { users: [auditor] }
auth: { publicUrl: "https://lapse.example.test" }
targets:
  prod-db:
    connector: noop
    entitlements: { readonly: {}, admin: {} }
policies:
  - name: sre-admin
    subjects: { groups: [sre] }
    entitlements: ["prod-db/admin"]
    duration: { default: 1h, max: 4h }
    approval: { stages: [{ name: leads, approvers: { groups: [sre-leads] } }] }
  - name: sre-mfa
    subjects: { groups: [sre] }
    entitlements: ["prod-db/readonly"]
    duration: { default: 1h, max: 4h }
    approval: { stages: [{ name: leads, approvers: { groups: [sre-leads] }, mfa: { maxAge: 5m } }] }
scheduler: { pollInterval: 100ms, connectorTimeout: 2s, provisionAttempts: 3, revokeBackoff: { min: 20ms, max: 200ms } }
notifications:
  channels:
    chat:
      type: slack
      token: "\${file:${join(dir, 'token')}}"
      signingSecret: "\${file:${join(dir, 'secret')}}"
      interactive: { policies: [sre-admin, sre-mfa] }
      apiUrl: ${fakeUrl}
      retry: { attempts: 3, backoff: { min: 50ms, max: 200ms } }
  rules:
    - { events: [request.pending, request.decided, grant.active], channels: [chat] }
    - { events: [request.pending], channels: [chat], to: { audience: false, slackChannels: [C0APPROVALS] } }
`;
}

const buttons = (m: FakeMessage) =>
  m.blocks
    .flatMap((b) => b.elements ?? [])
    .filter((e) => e.type === 'button')
    .map((e) => e.action_id);

describeEachStore('Slack notifications and interactive approvals, end to end', ({ store }) => {
  let fake: SlackFake;
  let api: TestApi;

  beforeAll(async () => {
    fake = await new SlackFake({
      tokens: [TOKEN],
      users: ['U0ALICE', 'U0BOB', 'U0CAROL', 'U0DAVE', 'U0MALLORY'],
      channels: ['C0APPROVALS'],
      signingSecret: SECRET,
    }).start();
    api = await startTestApi(store(), { yaml: yaml(fake.url, mkdtempSync(join(tmpdir(), 'lapse-slack-'))) });
    await createUser(store().db, { name: 'dave', groups: [...dave.groups] }, new Date());
  });
  afterAll(async () => {
    await api?.stop();
    await fake?.close();
  });

  const post = (url: string, signed: { body: string; headers: Record<string, string> }) =>
    api.call(null, { method: 'POST', url, payload: signed.body, headers: signed.headers });
  const click = (message: FakeMessage, user: string, action: string, options: { secret?: string; timestamp?: number } = {}) =>
    post('/api/v1/integrations/slack/interactions', fake.interaction(message, user, action, options));
  const audit = (action: string) => queryAuditEvents(store().db, { action, limit: 100 });
  const submit = async (entitlement: string) => {
    const response = await api.call('alice', {
      method: 'POST',
      url: '/api/v1/requests',
      payload: { target: 'prod-db', entitlement, duration: '1h', reason: 'rotate the primary after INC-7' },
    });
    expect(response.statusCode, response.body).toBe(201);
    return response.json<{ request: { id: string } }>().request.id;
  };

  it('links a person by a one-time code they send to the app, and an admin maps others; never by email', async () => {
    const issued = await api.call('bob', { method: 'POST', url: '/api/v1/me/slack/link-code' });
    expect(issued.statusCode, issued.body).toBe(200);
    const { code } = issued.json<{ code: string }>();
    expect(code).toMatch(/^[A-Z0-9]{4}-[A-Z0-9]{4}$/);
    const linked = await post('/api/v1/integrations/slack/commands', fake.command('U0BOB', `link ${code}`));
    expect(linked.statusCode, linked.body).toBe(200);
    expect(linked.json()).toEqual({ response_type: 'ephemeral', text: 'Linked: Lapse now knows you as bob.' });
    expect((await api.call('bob', { method: 'GET', url: '/api/v1/me/slack' })).json()).toEqual({ slackUserId: 'U0BOB' });
    expect((await audit('slack.linked')).map((e) => [e.actor, e.subject, e.data])).toEqual([['bob', 'bob', { slackUserId: 'U0BOB', by: 'code' }]]);

    // A code works once: someone else sending it links nobody, and it is audited.
    const reused = await post('/api/v1/integrations/slack/commands', fake.command('U0MALLORY', `link ${code}`));
    expect(reused.json<{ text: string }>().text).toMatch(/did not link your account: unknown code/);
    expect((await audit('slack.link_refused')).at(0)?.data).toMatchObject({ slackUser: 'U0MALLORY', reason: 'unknown code' });

    // Admin mapping; not for anyone else; a Slack id links one person only.
    for (const [user, id] of [
      ['alice', 'U0ALICE'],
      ['dave', 'U0DAVE'],
    ]) {
      const mapped = await api.call('root', { method: 'POST', url: '/api/v1/integrations/slack/links', payload: { user, slackUserId: id } });
      expect(mapped.statusCode, mapped.body).toBe(200);
    }
    const refused = await api.call('mallory', { method: 'POST', url: '/api/v1/integrations/slack/links', payload: { user: 'mallory', slackUserId: 'U0BOB' } });
    expect(refused.statusCode).toBe(403);
    const taken = await api.call('root', { method: 'POST', url: '/api/v1/integrations/slack/links', payload: { user: 'carol', slackUserId: 'U0BOB' } });
    expect(taken.statusCode).toBe(409);
    const bad = await api.call('root', {
      method: 'POST',
      url: '/api/v1/integrations/slack/links',
      payload: { user: 'carol', slackUserId: 'carol@example.com' },
    });
    expect(bad.statusCode).toBe(400);
    expect(bad.json<{ detail: string }>().detail).toMatch(/Slack user id/);
    expect((await api.call('carol', { method: 'GET', url: '/api/v1/me/slack' })).json()).toEqual({ slackUserId: null });
  });

  let asked: { requestId: string; bobs: FakeMessage; daves: FakeMessage };

  it("a request submitted through the API DMs each linked approver and posts to the rule's channel, with the deep link and buttons", async () => {
    const requestId = await submit('admin');
    const bobs = await waitFor(
      async () => fake.messagesIn(fake.dmOf('U0BOB') ?? '-').find((m) => JSON.stringify(m.blocks).includes(requestId)),
      (m) => m !== undefined,
    );
    const daves = await waitFor(
      async () => fake.messagesIn(fake.dmOf('U0DAVE') ?? '-').find((m) => JSON.stringify(m.blocks).includes(requestId)),
      (m) => m !== undefined,
    );
    const inChannel = await waitFor(
      async () => fake.messagesIn('C0APPROVALS').find((m) => JSON.stringify(m.blocks).includes(requestId)),
      (m) => m !== undefined,
    );
    expect(bobs!.text).toBe('alice asks for prod-db/admin: your approval is needed');
    expect(JSON.stringify(bobs!.blocks)).toContain(`https://lapse.example.test/requests/${requestId}`);
    expect(buttons(bobs!)).toEqual(['lapse.approve', 'lapse.deny', 'lapse.open']);
    expect(buttons(inChannel!)).toEqual(['lapse.approve', 'lapse.deny', 'lapse.open']);
    // The requester is not asked; the bot token went as a bearer header on every call.
    expect(fake.dmOf('U0ALICE')).toBeUndefined();
    expect(fake.calls.every((c) => c.token === TOKEN)).toBe(true);
    asked = { requestId, bobs: bobs!, daves: daves! };
  });

  it('a forged, an expired and a replayed click are refused and audited, and change nothing', async () => {
    const forged = await click(asked.bobs, 'U0BOB', 'lapse.approve', { secret: 'not-the-signing-secret-000000000' });
    expect(forged.statusCode).toBe(401);
    const expired = await click(asked.bobs, 'U0BOB', 'lapse.approve', { timestamp: Math.floor(Date.now() / 1000) - 600 });
    expect(expired.statusCode).toBe(401);
    const unsigned = await api.call(null, {
      method: 'POST',
      url: '/api/v1/integrations/slack/interactions',
      payload: fake.interaction(asked.bobs, 'U0BOB', 'lapse.approve').body,
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    expect(unsigned.statusCode).toBe(401);
    const reasons = (await audit('slack.request_refused')).map((e) => e.data?.reason);
    expect(reasons).toEqual(expect.arrayContaining(['mismatch', 'expired', 'missing']));
    expect((await api.t.engine.read.request(asked.requestId))?.status).toBe('pending');

    // Replay: the first delivery of a signed click counts; the same bytes again are refused.
    const signed = fake.interaction(asked.daves, 'U0CAROL', 'lapse.deny');
    expect((await post('/api/v1/integrations/slack/interactions', signed)).statusCode).toBe(200);
    const replayed = await post('/api/v1/integrations/slack/interactions', signed);
    expect(replayed.statusCode).toBe(401);
    expect(replayed.json<{ detail: string }>().detail).toMatch(/already received \(a replay\)/);
    expect((await audit('slack.request_refused')).map((e) => e.data?.reason)).toContain('replayed');
    // The one accepted click was carol's, who has not linked Slack: refused, audited, told.
    await api.t.engine.slack.idle();
    expect((await audit('slack.interaction_refused')).map((e) => [e.subject, e.data?.reason, e.data?.slackUser])).toContainEqual([
      asked.requestId,
      'unlinked',
      'U0CAROL',
    ]);
    expect(fake.accepted('chat.postEphemeral').at(-1)?.params).toMatchObject({ user: 'U0CAROL' });
    expect((await api.t.engine.read.request(asked.requestId))?.status).toBe('pending');
  });

  it('a linked approver approves from Slack: acknowledged at once, same review use-case, messages updated in place', async () => {
    const started = performance.now();
    const answer = await click(asked.bobs, 'U0BOB', 'lapse.approve');
    const ms = performance.now() - started;
    expect(answer.statusCode, answer.body).toBe(200);
    expect(ms).toBeLessThan(2_500); // Slack gives up after 3 s
    await api.t.engine.slack.idle();
    const request = await waitFor(
      () => api.t.engine.read.request(asked.requestId),
      (r) => r?.status === 'approved',
    );
    expect(request?.grantId).toBeTruthy();
    const reviews = await audit('review.approve');
    expect(reviews.map((e) => [e.actor, e.subject])).toContainEqual(['bob', asked.requestId]);
    expect(asked.bobs.text).toBe("Approved by bob in Slack: alice's request for prod-db/admin.");
    expect(buttons(asked.bobs)).toEqual([]);
    // The requester hears the decision; dave's message no longer asks.
    await waitFor(
      async () => fake.messagesIn(fake.dmOf('U0ALICE') ?? '-').map((m) => m.text),
      (texts) => texts.includes('Your request for prod-db/admin was approved'),
    );
    await waitFor(
      async () => asked.daves.text,
      (text) => text.startsWith('Approved by bob') || text.startsWith('Active until'),
    );
    expect(buttons(asked.daves)).toEqual([]);
  });

  it('a requester approving their own request from Slack is refused and audited', async () => {
    const { request } = await api.t.engine.submit({
      principal: dave,
      target: 'prod-db',
      entitlement: 'admin',
      durationMs: 3_600_000,
      reason: 'my own change, INC-9',
    });
    const inChannel = await waitFor(
      async () => fake.messagesIn('C0APPROVALS').find((m) => JSON.stringify(m.blocks).includes(request.id)),
      (m) => m !== undefined,
    );
    expect((await click(inChannel!, 'U0DAVE', 'lapse.approve')).statusCode).toBe(200);
    await api.t.engine.slack.idle();
    expect((await api.t.engine.read.request(request.id))?.status).toBe('pending');
    const refusal = (await audit('slack.interaction_refused')).find((e) => e.subject === request.id);
    expect(refusal).toMatchObject({ actor: 'dave', data: { reason: 'self_approval', slackUser: 'U0DAVE' } });
    expect((await audit('review.refused')).map((e) => [e.actor, e.subject])).toContainEqual(['dave', request.id]);
    expect(fake.accepted('chat.postEphemeral').at(-1)?.params).toMatchObject({ user: 'U0DAVE', channel: 'C0APPROVALS' });
  });

  it('a stage that requires MFA step-up gets no Approve button, only a way to the portal', async () => {
    const requestId = await submit('readonly');
    const bobs = await waitFor(
      async () => fake.messagesIn(fake.dmOf('U0BOB') ?? '-').find((m) => JSON.stringify(m.blocks).includes(requestId)),
      (m) => m !== undefined,
    );
    expect(buttons(bobs!)).toEqual(['lapse.open']);
    expect(JSON.stringify(bobs!.blocks)).toContain('Approve in Lapse (MFA required)');
  });

  it('sends a test DM to a linked person (lapse notify test), and says why not for an unlinked one', async () => {
    const sent = await api.t.engine.notifications.sendTest({ id: 'alice', kind: 'user', groups: ['sre'] }, 'chat');
    expect(sent.to).toBe('alice (Slack DM)');
    expect(fake.messagesIn(fake.dmOf('U0ALICE')!).at(-1)!.text).toBe('alice asks for test/notification: your approval is needed');
    await expect(api.t.engine.notifications.sendTest({ id: 'carol', kind: 'user', groups: ['security'] }, 'chat')).rejects.toThrow(
      /channel chat could not send: carol has not linked a Slack account/,
    );
  });

  it('never puts the bot token or signing secret in the audit log or an API answer', async () => {
    const all = await queryAuditEvents(store().db, { limit: 1000 });
    const text = JSON.stringify(all);
    expect(text).not.toContain(TOKEN);
    expect(text).not.toContain(SECRET);
    const deliveries = await api.call('root', { method: 'GET', url: '/api/v1/notifications/deliveries' });
    expect(deliveries.body).not.toContain(TOKEN);
  });
});
