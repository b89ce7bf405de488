import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SlackChannelConfig } from '../config/types.js';
import { checkSlackSignature, slackSignature } from './slack-signature.js';
import { SlackChannel, type SlackDirectory, type SlackMessageRef } from './slack.js';
import { SlackFake } from './testing/slack-fake.js';
import { UndeliverableError, type OutgoingNotification } from './types.js';

const TOKEN = 'xoxb-1111-2222-abcdefghijkl';
const SECRET = '8f742231b10e8888abcd99yyyzzz85a5';

function directory(links: Record<string, string>): SlackDirectory & { refs: SlackMessageRef[] } {
  const refs: SlackMessageRef[] = [];
  return {
    refs,
    slackUserOf: async (user) => links[user],
    messageOfDelivery: async (id) => refs.find((r) => r.deliveryId === id),
    messagesOfRequest: async (channel, requestId) => refs.filter((r) => r.channel === channel && r.requestId === requestId),
    remember: async (ref) => void refs.push(ref),
  };
}

const settings = (fake: SlackFake, token = TOKEN): SlackChannelConfig => ({
  name: 'chat',
  type: 'slack',
  token,
  signingSecret: SECRET,
  interactivePolicies: new Set(['sre-admin']),
  apiUrl: fake.url,
  timeoutMs: 5_000,
  retry: { attempts: 3, backoffMinMs: 10, backoffMaxMs: 100 },
});

let n = 0;
const pending = (overrides: Partial<Record<string, unknown>> = {}, recipient: OutgoingNotification['recipient'] = { user: 'bob' }): OutgoingNotification => ({
  id: `ntf_test${String((n += 1)).padStart(6, '0')}`,
  event: 'request.pending',
  urgent: false,
  payload: {
    requestId: 'req_01JTESTREQUEST00000000000',
    requester: 'alice',
    entitlement: 'prod-db/admin',
    durationMs: 3_600_000,
    reason: 'rotate the primary',
    stage: 'leads',
    policy: 'sre-admin',
    stageMfa: false,
    ...overrides,
  },
  recipient,
  portalUrl: 'https://lapse.example.test',
});

const signal = () => AbortSignal.timeout(5_000);
const actionIds = (blocks: readonly { type: string; elements?: readonly { type: string; action_id?: string }[] }[]) =>
  blocks
    .flatMap((b) => b.elements ?? [])
    .filter((e) => e.type === 'button')
    .map((e) => e.action_id);

describe('the Slack channel against a fake Slack Web API', () => {
  let fake: SlackFake;
  beforeAll(async () => {
    fake = await new SlackFake({ tokens: [TOKEN], users: ['U0BOB', 'U0CAROL'], channels: ['C0APPROVALS'], signingSecret: SECRET }).start();
  });
  afterAll(() => fake.close());

  it('DMs a linked approver with the request, a deep link, and Approve / Deny for an opted-in policy', async () => {
    const dir = directory({ bob: 'U0BOB' });
    const message = pending();
    await new SlackChannel(settings(fake), dir).send(message, signal());
    const open = fake.accepted('conversations.open').at(-1)!;
    expect(open.params.users).toBe('U0BOB');
    expect(open.token).toBe(TOKEN);
    const posted = fake.messagesIn(fake.dmOf('U0BOB')!).at(-1)!;
    expect(posted.text).toBe('alice asks for prod-db/admin: your approval is needed');
    expect(JSON.stringify(posted.blocks)).toContain('https://lapse.example.test/requests/req_01JTESTREQUEST00000000000');
    expect(actionIds(posted.blocks)).toEqual(['lapse.approve', 'lapse.deny', 'lapse.open']);
    expect(dir.refs).toEqual([expect.objectContaining({ deliveryId: message.id, conversation: fake.dmOf('U0BOB'), ts: posted.ts, event: 'request.pending' })]);
  });

  it('shows only a link for a policy that did not opt in, and for a stage that wants MFA step-up', async () => {
    const dir = directory({ bob: 'U0BOB' });
    const channel = new SlackChannel(settings(fake), dir);
    await channel.send(pending({ policy: 'sre-readonly' }), signal());
    expect(actionIds(fake.messages.at(-1)!.blocks)).toEqual(['lapse.open']);
    await channel.send(pending({ stageMfa: true }), signal());
    const mfa = fake.messages.at(-1)!;
    expect(actionIds(mfa.blocks)).toEqual(['lapse.open']);
    expect(JSON.stringify(mfa.blocks)).toContain('Approve in Lapse (MFA required)');
  });

  it('posts to a Slack channel a rule names, without opening a DM', async () => {
    const opens = fake.calls.filter((c) => c.method === 'conversations.open').length;
    await new SlackChannel(settings(fake), directory({})).send(pending({}, { address: 'slack:C0APPROVALS' }), signal());
    expect(fake.calls.filter((c) => c.method === 'conversations.open')).toHaveLength(opens);
    expect(fake.messagesIn('C0APPROVALS')).toHaveLength(1);
  });

  it('skips a person who has not linked Slack, without calling Slack', async () => {
    const calls = fake.calls.length;
    const error = await new SlackChannel(settings(fake), directory({})).send(pending(), signal()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UndeliverableError);
    expect((error as UndeliverableError).outcome).toBe('skipped');
    expect((error as Error).message).toMatch(/bob has not linked a Slack account/);
    expect(fake.calls.length).toBe(calls);
  });

  it('gives up on a token Slack refuses (invalid_auth), and never puts the token in the error', async () => {
    const wrong = 'xoxb-9999-0000-notthetoken';
    const error = await new SlackChannel(settings(fake, wrong), directory({ bob: 'U0BOB' })).send(pending(), signal()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UndeliverableError);
    expect((error as UndeliverableError).outcome).toBe('failed');
    expect((error as Error).message).toBe('Slack refused the message: invalid_auth');
    expect(fake.calls.at(-1)!.answer).toEqual({ ok: false, error: 'invalid_auth' });
    expect(fake.calls.at(-1)!.token).toBe(wrong);
  });

  it('updates the same message when a delivery is sent again after a crash, instead of posting a second', async () => {
    const dir = directory({ carol: 'U0CAROL' });
    const channel = new SlackChannel(settings(fake), dir);
    const message = pending({}, { user: 'carol' });
    await channel.send(message, signal());
    await channel.send(message, signal());
    const dm = fake.messagesIn(fake.dmOf('U0CAROL')!);
    expect(dm).toHaveLength(1);
    expect(dm[0]!.updates).toBe(1);
  });

  it('updates the asking messages in place when the request is decided, leaving no buttons', async () => {
    const dir = directory({ bob: 'U0BOB', alice: 'U0CAROL' });
    const channel = new SlackChannel(settings(fake), dir);
    const requestId = 'req_01JTESTDECIDED0000000000';
    await channel.send(pending({ requestId }), signal());
    const asked = fake.messages.at(-1)!;
    await channel.send({ ...pending({ requestId, outcome: 'approved', by: 'bob' }, { user: 'alice' }), event: 'request.decided' }, signal());
    expect(asked.updates).toBe(1);
    expect(asked.text).toBe("Approved by bob: alice's request for prod-db/admin.");
    expect(actionIds(asked.blocks)).toEqual([]);
  });

  it('escapes Slack markup in what a requester wrote (no @channel pings, no links)', async () => {
    await new SlackChannel(settings(fake), directory({ bob: 'U0BOB' })).send(
      pending({ reason: 'please <!channel> see <https://evil.example|here>' }),
      signal(),
    );
    const text = JSON.stringify(fake.messages.at(-1)!.blocks);
    expect(text).not.toContain('<!channel>');
    expect(text).toContain('&lt;!channel&gt;');
  });
});

describe("Slack's request signature", () => {
  const body = 'payload=%7B%22type%22%3A%22block_actions%22%7D';
  const now = 1_800_000_000_000;
  const ts = String(now / 1000);
  const check = (headers: { timestamp: string | undefined; signature: string | undefined }, raw = body) =>
    checkSlackSignature(['other-secret-000000', SECRET], headers, raw, now).result;

  it('accepts v0=HMAC-SHA256(secret, "v0:ts:body") within five minutes, and says which secret matched', () => {
    expect(checkSlackSignature(['other-secret-000000', SECRET], { timestamp: ts, signature: slackSignature(SECRET, ts, body) }, body, now)).toEqual({
      result: 'valid',
      secret: 1,
    });
    const edge = String(now / 1000 - 299);
    expect(check({ timestamp: edge, signature: slackSignature(SECRET, edge, body) })).toBe('valid');
  });

  it('refuses a forged, altered, stale, future, malformed or missing signature', () => {
    expect(check({ timestamp: ts, signature: slackSignature('not-the-secret', ts, body) })).toBe('mismatch');
    expect(check({ timestamp: ts, signature: slackSignature(SECRET, ts, body) }, `${body}x`)).toBe('mismatch');
    const old = String(now / 1000 - 301);
    expect(check({ timestamp: old, signature: slackSignature(SECRET, old, body) })).toBe('expired');
    const future = String(now / 1000 + 301);
    expect(check({ timestamp: future, signature: slackSignature(SECRET, future, body) })).toBe('expired');
    expect(check({ timestamp: ts, signature: 'v1=abc' })).toBe('malformed');
    expect(check({ timestamp: 'yesterday', signature: slackSignature(SECRET, ts, body) })).toBe('malformed');
    expect(check({ timestamp: undefined, signature: slackSignature(SECRET, ts, body) })).toBe('missing');
    expect(check({ timestamp: ts, signature: undefined })).toBe('missing');
  });
});
