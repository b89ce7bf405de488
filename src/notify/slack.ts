import { ErrorCode, WebClient, type KnownBlock, type Logger as SlackLogger } from '@slack/web-api';
import type { SlackChannelConfig } from '../config/types.js';
import { describeNotification, type NotificationContent } from './message.js';
import { UndeliverableError, type NotificationChannel, type OutgoingNotification } from './types.js';

/**
 * Slack over the Web API (`@slack/web-api`, a bot token): a DM to each linked person (their Slack
 * user id, linked by a code they sent or by an admin; never guessed from email) or a post to a
 * Slack channel a rule names. A message about a request is remembered (conversation + ts) so later
 * events of that request update it in place; approval requests of opted-in policies carry Approve
 * / Deny buttons, except at stages that want MFA step-up, whose button opens the portal instead.
 */

/** Where a delivery's message went. */
export interface SlackMessageRef {
  readonly deliveryId: string;
  readonly requestId: string;
  readonly channel: string;
  readonly conversation: string;
  readonly ts: string;
  readonly event: string;
}

/** What the channel needs from the database, given by the engine (notify does not reach the store). */
export interface SlackDirectory {
  slackUserOf(user: string): Promise<string | undefined>;
  messageOfDelivery(deliveryId: string): Promise<SlackMessageRef | undefined>;
  messagesOfRequest(channel: string, requestId: string): Promise<SlackMessageRef[]>;
  remember(ref: SlackMessageRef): Promise<void>;
}

/** A recipient that is a Slack channel, not a person (`to.slackChannels` in a rule). */
export const SLACK_CHANNEL_RECIPIENT = 'slack:';

/** The events whose message asks for a decision, updated in place when the request moves on. */
const ASKING = new Set(['request.pending', 'request.reminder', 'request.escalated', 'extension.pending']);
/** The events that move a request on, and so update the messages that asked about it. */
const MOVING = new Set(['request.decided', 'grant.active', 'grant.ended']);

export const APPROVE_ACTION = 'lapse.approve';
export const DENY_ACTION = 'lapse.deny';
export const OPEN_ACTION = 'lapse.open';

const SILENT: SlackLogger = { debug() {}, info() {}, warn() {}, error() {}, setLevel() {}, getLevel: () => 'error' as never, setName() {} };

/** Slack errors retrying cannot fix (https://api.slack.com/methods/chat.postMessage#errors). */
const PERMANENT = new Set([
  'invalid_auth',
  'not_authed',
  'account_inactive',
  'token_revoked',
  'channel_not_found',
  'not_in_channel',
  'is_archived',
  'user_not_found',
  'user_disabled',
  'cannot_dm_bot',
  'missing_scope',
  'invalid_blocks',
  'msg_too_long',
  'no_text',
]);

export class SlackChannel implements NotificationChannel {
  readonly type = 'slack';
  readonly name: string;
  private readonly client: WebClient;

  constructor(
    private readonly config: SlackChannelConfig,
    private readonly directory: SlackDirectory,
  ) {
    this.name = config.name;
    this.client = new WebClient(config.token, {
      slackApiUrl: config.apiUrl,
      // NB. The outbox retries with its own backoff and attempt count; the client's default
      // (ten retries over half an hour) would hold a worker slot and hide failures.
      retryConfig: { retries: 0 },
      rejectRateLimitedCalls: true,
      timeout: config.timeoutMs,
      logger: SILENT,
    });
  }

  async send(message: OutgoingNotification, signal: AbortSignal): Promise<void> {
    signal.throwIfAborted();
    const requestId = typeof message.payload.requestId === 'string' && message.payload.requestId !== 'test' ? message.payload.requestId : undefined;
    const content = describeNotification(message);
    const blocks = renderBlocks(content, this.buttonsFor(message, content));
    const earlier = await this.directory.messageOfDelivery(message.id);
    await this.call(async () => {
      if (earlier) {
        // Sent before a crash cut the record short: the same message, updated, not a second one.
        await this.client.chat.update({ channel: earlier.conversation, ts: earlier.ts, text: content.title, blocks });
      } else {
        const conversation = await this.conversationOf(message);
        const posted = await this.client.chat.postMessage({ channel: conversation, text: content.title, blocks, unfurl_links: false, unfurl_media: false });
        if (requestId && posted.ts && posted.channel) {
          await this.directory.remember({
            deliveryId: message.id,
            requestId,
            channel: this.name,
            conversation: posted.channel,
            ts: posted.ts,
            event: message.event,
          });
        }
      }
      if (requestId && MOVING.has(message.event)) await this.updateAsking(requestId, message);
    });
  }

  /** Rewrites a message in place (the one an approver clicked), e.g. with who decided. */
  async update(conversation: string, ts: string, text: string, portalUrl: string | undefined, requestId: string): Promise<void> {
    await this.call(() => this.client.chat.update({ channel: conversation, ts, text, blocks: statusBlocks(text, portalUrl, requestId) }));
  }

  /** Tells one person, in the conversation they clicked in, why their click did nothing. */
  async tell(conversation: string, slackUser: string, text: string): Promise<void> {
    await this.call(() => this.client.chat.postEphemeral({ channel: conversation, user: slackUser, text: escapeText(text) }));
  }

  async close(): Promise<void> {}

  private async conversationOf(message: OutgoingNotification): Promise<string> {
    const address = message.recipient.address;
    if (address?.startsWith(SLACK_CHANNEL_RECIPIENT)) return address.slice(SLACK_CHANNEL_RECIPIENT.length);
    const user = message.recipient.user;
    const slackUser = user ? await this.directory.slackUserOf(user) : undefined;
    if (!slackUser) {
      throw new UndeliverableError(
        `${user ?? 'the recipient'} has not linked a Slack account; they link it with a code from the portal (or an admin links it: lapse slack link <user> <U…>)`,
        'skipped',
      );
    }
    const opened = await this.client.conversations.open({ users: slackUser });
    if (!opened.channel?.id) throw new Error('Slack opened no DM conversation (conversations.open answered without a channel id)');
    return opened.channel.id;
  }

  /** The messages that asked about this request now say where it stands (no buttons left to click). */
  private async updateAsking(requestId: string, message: OutgoingNotification): Promise<void> {
    const text = statusLine(message);
    for (const ref of await this.directory.messagesOfRequest(this.name, requestId)) {
      if (!ASKING.has(ref.event)) continue;
      try {
        await this.client.chat.update({ channel: ref.conversation, ts: ref.ts, text, blocks: statusBlocks(text, message.portalUrl, requestId) });
      } catch (error) {
        // A message someone deleted stays deleted; the others are still updated.
        if (platformError(error) !== 'message_not_found') throw error;
      }
    }
  }

  private buttonsFor(message: OutgoingNotification, content: NotificationContent): Button[] {
    const p = message.payload;
    const link: Button[] = content.action ? [{ type: 'button', action_id: OPEN_ACTION, text: plain(content.action.label), url: content.action.url }] : [];
    const interactive = ASKING.has(message.event) && typeof p.policy === 'string' && this.config.interactivePolicies.has(p.policy);
    if (!interactive || typeof p.requestId !== 'string') return link;
    if (p.stageMfa === true) {
      // NB. Slack cannot ask for a second factor: a stage that wants MFA step-up is decided in the portal.
      return content.action
        ? [{ type: 'button', action_id: OPEN_ACTION, text: plain('Approve in Lapse (MFA required)'), url: content.action.url, style: 'primary' }]
        : [];
    }
    return [
      { type: 'button', action_id: APPROVE_ACTION, text: plain('Approve'), value: p.requestId, style: 'primary' },
      {
        type: 'button',
        action_id: DENY_ACTION,
        text: plain('Deny'),
        value: p.requestId,
        style: 'danger',
        confirm: { title: plain('Deny this request?'), text: plain('The requester is told it was denied.'), confirm: plain('Deny'), deny: plain('Cancel') },
      },
      ...link,
    ];
  }

  /** Runs Web API calls; Slack's answers that no retry will change become UndeliverableError. */
  private async call<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (error) {
      const code = platformError(error);
      if (code !== undefined && PERMANENT.has(code)) throw new UndeliverableError(`Slack refused the message: ${code}`);
      if (code !== undefined) throw new Error(`Slack answered ${code}`);
      if ((error as { code?: string }).code === ErrorCode.RateLimitedError) throw new Error('Slack rate-limited the call; it is retried later');
      throw error;
    }
  }
}

function platformError(error: unknown): string | undefined {
  const e = error as { code?: string; data?: { error?: unknown } };
  return e?.code === ErrorCode.PlatformError && typeof e.data?.error === 'string' ? e.data.error.slice(0, 100) : undefined;
}

interface PlainText {
  readonly type: 'plain_text';
  readonly text: string;
}
interface Button {
  readonly type: 'button';
  readonly action_id: string;
  readonly text: PlainText;
  readonly value?: string;
  readonly url?: string;
  readonly style?: 'primary' | 'danger';
  readonly confirm?: { title: PlainText; text: PlainText; confirm: PlainText; deny: PlainText };
}

const plain = (text: string): PlainText => ({ type: 'plain_text', text: text.slice(0, 75) });

/** Slack's mrkdwn control characters: `<!channel>` in a requester's reason must not ping anyone. */
export function escapeText(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** Block Kit for a notification: a header, the summary, the facts, the buttons, the note. */
export function renderBlocks(content: NotificationContent, buttons: readonly Button[]): KnownBlock[] {
  const blocks: KnownBlock[] = [
    { type: 'header', text: { type: 'plain_text', text: content.title.slice(0, 150) } },
    { type: 'section', text: { type: 'mrkdwn', text: escapeText(content.summary).slice(0, 3000) } },
  ];
  const facts = content.facts.slice(0, 10);
  if (facts.length > 0) {
    blocks.push({
      type: 'section',
      fields: facts.map(([label, value]) => ({ type: 'mrkdwn', text: `*${escapeText(label)}*\n${escapeText(value)}`.slice(0, 2000) })),
    });
  }
  if (buttons.length > 0) blocks.push({ type: 'actions', block_id: 'lapse.actions', elements: [...buttons] });
  if (content.note) blocks.push({ type: 'context', elements: [{ type: 'mrkdwn', text: escapeText(content.note).slice(0, 3000) }] });
  return blocks;
}

/** A message that no longer asks anything: where the request stands, and a link to it. */
function statusBlocks(text: string, portalUrl: string | undefined, requestId: string): KnownBlock[] {
  const blocks: KnownBlock[] = [{ type: 'section', text: { type: 'mrkdwn', text: escapeText(text).slice(0, 3000) } }];
  if (portalUrl) {
    blocks.push({
      type: 'context',
      elements: [{ type: 'mrkdwn', text: `<${portalUrl}/requests/${encodeURIComponent(requestId)}|Open ${escapeText(requestId)} in Lapse>` }],
    });
  }
  return blocks;
}

const str = (value: unknown): string => (typeof value === 'string' ? value : '');

/** One line saying where a request stands after the event. */
export function statusLine(message: Pick<OutgoingNotification, 'event' | 'payload'>): string {
  const p = message.payload;
  const about = `${str(p.requester)}'s request for ${str(p.entitlement)}`;
  switch (message.event) {
    case 'request.decided':
      return p.outcome === 'approved'
        ? `Approved${p.by ? ` by ${str(p.by)}` : ''}: ${about}.`
        : p.outcome === 'denied'
          ? `Denied${p.by ? ` by ${str(p.by)}` : ''}: ${about}.`
          : `Closed without a decision (timed out): ${about}.`;
    case 'grant.active':
      return `Active until ${str(p.expiresAt)}: ${about}.`;
    case 'grant.ended':
      return `Ended${p.reason ? ` (${str(p.reason)})` : ''}: ${about}.`;
    default:
      return `${about}: ${message.event}.`;
  }
}
