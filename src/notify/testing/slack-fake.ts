import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { slackSignature } from '../slack-signature.js';

/**
 * A local stand-in for Slack's Web API, speaking its wire protocol: POST https://slack.com/api/<method>
 * with a form-encoded or JSON body, the bot token in `Authorization: Bearer` (or a `token` form
 * field), and HTTP 200 with `{ ok: false, error }` for what Slack refuses (`not_authed`,
 * `invalid_auth`, `channel_not_found`, `not_in_channel`, `no_text`, `invalid_blocks`,
 * `message_not_found`, `cant_update_message`, `user_not_found`). It records every call, and makes
 * (signs, or forges) the interaction payloads Slack would post to Lapse.
 *
 * What it cannot prove: Slack's full Block Kit validation, rate limits, Enterprise Grid ids, or that
 * the real app's scopes allow each call. See docs/notifications.md#slack.
 */

export interface SlackCall {
  readonly method: string;
  readonly token: string | undefined;
  readonly params: Record<string, unknown>;
  /** What the fake answered. */
  readonly answer: Record<string, unknown>;
}

export interface FakeMessage {
  readonly channel: string;
  readonly ts: string;
  text: string;
  blocks: Block[];
  readonly token: string;
  updates: number;
}

interface Block {
  readonly type: string;
  readonly block_id?: string;
  readonly elements?: readonly { type: string; action_id?: string; value?: string; url?: string; style?: string; text?: { text: string } }[];
  readonly text?: { type: string; text: string };
  readonly fields?: readonly { type: string; text: string }[];
}

export interface SlackFakeOptions {
  /** Bot tokens the fake accepts. */
  readonly tokens: readonly string[];
  /** Known Slack users (U…); conversations.open with any other answers user_not_found. */
  readonly users: readonly string[];
  /** Channels the bot is a member of (C…); others answer channel_not_found. */
  readonly channels: readonly string[];
  /** The signing secret of "the app", for signed interaction payloads. */
  readonly signingSecret: string;
}

const BLOCK_TYPES = new Set(['header', 'section', 'actions', 'context', 'divider', 'image', 'input', 'rich_text']);

export class SlackFake {
  readonly calls: SlackCall[] = [];
  readonly messages: FakeMessage[] = [];
  private server: Server | undefined;
  private sequence = 0;
  private readonly dms = new Map<string, string>();

  constructor(private readonly options: SlackFakeOptions) {}

  /** The base URL to give the WebClient (`slackApiUrl`, `apiUrl` in lapse.yaml). */
  url = '';

  async start(): Promise<this> {
    this.server = createServer((request, response) => {
      void this.handle(request).then(
        ({ status, body }) => {
          response.writeHead(status, { 'content-type': 'application/json; charset=utf-8' });
          response.end(JSON.stringify(body));
        },
        () => {
          response.writeHead(500);
          response.end();
        },
      );
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/api/`;
    return this;
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  /** Calls of one method that Slack accepted. */
  accepted(method: string): SlackCall[] {
    return this.calls.filter((c) => c.method === method && c.answer.ok === true);
  }

  /** The DM conversation id the fake gave a user (after conversations.open). */
  dmOf(user: string): string | undefined {
    return this.dms.get(user);
  }

  /** Messages in a conversation, oldest first. */
  messagesIn(channel: string): FakeMessage[] {
    return this.messages.filter((m) => m.channel === channel);
  }

  /**
   * The body and headers Slack would POST to Lapse when `user` clicks the button `actionId` on
   * `message`, signed with the app's signing secret (or another `secret`, to forge), at `timestamp`
   * seconds (default: now).
   */
  interaction(message: FakeMessage, user: string, actionId: string, options: { secret?: string; timestamp?: number } = {}) {
    const action = message.blocks.flatMap((b) => b.elements ?? []).find((e) => e.action_id === actionId);
    if (!action) throw new Error(`the message ${message.ts} has no button ${actionId}`);
    const payload = {
      type: 'block_actions',
      user: { id: user, username: user.toLowerCase(), team_id: 'T0FAKE' },
      api_app_id: 'A0FAKE',
      token: 'deprecated-verification-token',
      container: { type: 'message', message_ts: message.ts, channel_id: message.channel, is_ephemeral: false },
      trigger_id: `${Date.now()}.${randomBytes(4).toString('hex')}`,
      team: { id: 'T0FAKE', domain: 'fake' },
      channel: { id: message.channel, name: 'directmessage' },
      message: { type: 'message', ts: message.ts, text: message.text, blocks: message.blocks },
      response_url: `${this.url}response/${message.ts}`,
      actions: [{ action_id: actionId, block_id: 'lapse.actions', value: action.value, type: 'button', action_ts: `${Date.now() / 1000}` }],
    };
    return this.sign(new URLSearchParams({ payload: JSON.stringify(payload) }).toString(), options);
  }

  /** A slash command as Slack posts it (`/lapse link CODE`), signed. */
  command(user: string, text: string, options: { secret?: string; timestamp?: number } = {}) {
    const body = new URLSearchParams({
      token: 'deprecated-verification-token',
      team_id: 'T0FAKE',
      channel_id: this.dms.get(user) ?? 'D0FAKE',
      user_id: user,
      user_name: user.toLowerCase(),
      command: '/lapse',
      text,
      response_url: `${this.url}commands/response`,
      trigger_id: `${Date.now()}.${randomBytes(4).toString('hex')}`,
    }).toString();
    return this.sign(body, options);
  }

  sign(body: string, options: { secret?: string; timestamp?: number } = {}) {
    const timestamp = String(options.timestamp ?? Math.floor(Date.now() / 1000));
    return {
      body,
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        'x-slack-request-timestamp': timestamp,
        'x-slack-signature': slackSignature(options.secret ?? this.options.signingSecret, timestamp, body),
      },
    };
  }

  private async handle(request: IncomingMessage): Promise<{ status: number; body: Record<string, unknown> }> {
    const url = new URL(request.url ?? '/', 'http://fake');
    const method = url.pathname.replace(/^\/api\//, '');
    let raw = '';
    for await (const chunk of request) raw += chunk;
    const type = request.headers['content-type'] ?? '';
    let params: Record<string, unknown>;
    try {
      params = type.startsWith('application/json') ? (JSON.parse(raw) as Record<string, unknown>) : Object.fromEntries(new URLSearchParams(raw));
    } catch {
      return { status: 200, body: { ok: false, error: 'invalid_json' } };
    }
    const bearer = /^Bearer (.+)$/.exec(request.headers.authorization ?? '')?.[1];
    const token = bearer ?? (typeof params.token === 'string' ? params.token : undefined);
    const answer = this.answer(method, token, params);
    this.calls.push({ method, token, params: { ...params, ...(typeof params.blocks === 'string' ? { blocks: safeJson(params.blocks) } : {}) }, answer });
    return { status: 200, body: answer };
  }

  private answer(method: string, token: string | undefined, params: Record<string, unknown>): Record<string, unknown> {
    if (token === undefined) return { ok: false, error: 'not_authed' };
    if (!this.options.tokens.includes(token)) return { ok: false, error: 'invalid_auth' };
    const str = (key: string) => (typeof params[key] === 'string' ? (params[key] as string) : undefined);
    switch (method) {
      case 'auth.test':
        return { ok: true, url: 'https://fake.slack.com/', team: 'Fake', user: 'lapse', team_id: 'T0FAKE', user_id: 'U0LAPSEBOT', bot_id: 'B0LAPSE' };
      case 'conversations.open': {
        const users = str('users')?.split(',') ?? [];
        if (users.length !== 1) return { ok: false, error: users.length === 0 ? 'users_list_not_supplied' : 'not_enough_users' };
        const user = users[0]!;
        if (!this.options.users.includes(user)) return { ok: false, error: 'user_not_found' };
        let dm = this.dms.get(user);
        if (!dm) {
          dm = `D0${user.slice(1)}`;
          this.dms.set(user, dm);
        }
        return { ok: true, channel: { id: dm } };
      }
      case 'chat.postMessage': {
        const channel = str('channel');
        if (!channel) return { ok: false, error: 'channel_not_found' };
        if (!this.knownConversation(channel)) return { ok: false, error: channel.startsWith('C') ? 'not_in_channel' : 'channel_not_found' };
        const content = this.content(params);
        if ('error' in content) return { ok: false, error: content.error };
        const ts = this.nextTs();
        const message: FakeMessage = { channel, ts, text: content.text, blocks: content.blocks, token, updates: 0 };
        this.messages.push(message);
        return { ok: true, channel, ts, message: { type: 'message', text: message.text, blocks: message.blocks, ts } };
      }
      case 'chat.update': {
        const channel = str('channel');
        const ts = str('ts');
        const message = this.messages.find((m) => m.channel === channel && m.ts === ts);
        if (!message) return { ok: false, error: 'message_not_found' };
        if (message.token !== token) return { ok: false, error: 'cant_update_message' };
        const content = this.content(params);
        if ('error' in content) return { ok: false, error: content.error };
        message.text = content.text;
        message.blocks = content.blocks;
        message.updates += 1;
        return { ok: true, channel, ts, text: message.text };
      }
      case 'chat.postEphemeral': {
        const channel = str('channel');
        const user = str('user');
        if (!channel || !this.knownConversation(channel)) return { ok: false, error: 'channel_not_found' };
        if (!user || !this.options.users.includes(user)) return { ok: false, error: 'user_not_in_channel' };
        if (!str('text') && !str('blocks')) return { ok: false, error: 'no_text' };
        return { ok: true, message_ts: this.nextTs() };
      }
      default:
        return { ok: false, error: 'unknown_method' };
    }
  }

  private knownConversation(channel: string): boolean {
    return this.options.channels.includes(channel) || [...this.dms.values()].includes(channel);
  }

  /** Text and blocks as chat.postMessage / chat.update take them, refused where Slack refuses. */
  private content(params: Record<string, unknown>): { text: string; blocks: Block[] } | { error: string } {
    const text = typeof params.text === 'string' ? params.text : '';
    let blocks: Block[] = [];
    if (params.blocks !== undefined) {
      const parsed = typeof params.blocks === 'string' ? safeJson(params.blocks) : params.blocks;
      if (!Array.isArray(parsed) || parsed.length > 50) return { error: 'invalid_blocks' };
      blocks = parsed as Block[];
      const actionIds = new Set<string>();
      for (const block of blocks) {
        if (!block || typeof block !== 'object' || !BLOCK_TYPES.has(block.type)) return { error: 'invalid_blocks' };
        if (block.type === 'header' && (block.text?.type !== 'plain_text' || block.text.text.length > 150)) return { error: 'invalid_blocks' };
        if (block.type === 'section' && !block.text && !block.fields) return { error: 'invalid_blocks' };
        if ((block.fields?.length ?? 0) > 10) return { error: 'invalid_blocks' };
        if (block.type === 'actions') {
          if (!block.elements || block.elements.length === 0 || block.elements.length > 25) return { error: 'invalid_blocks' };
          for (const element of block.elements) {
            if ((element.text?.text.length ?? 0) > 75) return { error: 'invalid_blocks' };
            if (element.action_id) {
              if (actionIds.has(element.action_id)) return { error: 'invalid_blocks' };
              actionIds.add(element.action_id);
            }
          }
        }
      }
    }
    if (!text && blocks.length === 0) return { error: 'no_text' };
    if (text.length > 40_000) return { error: 'msg_too_long' };
    return { text, blocks };
  }

  private nextTs(): string {
    this.sequence += 1;
    return `${Math.floor(Date.now() / 1000)}.${String(this.sequence).padStart(6, '0')}`;
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
