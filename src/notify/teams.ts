import type { TeamsChannelConfig } from '../config/types.js';
import { postJson, retryAfterMs } from './https-post.js';
import { describeNotification, type NotificationContent } from './message.js';
import { RetryLaterError, UndeliverableError, type NotificationChannel, type OutgoingNotification } from './types.js';

/**
 * Microsoft Teams: an Adaptive Card posted to a Workflows ("When a Teams webhook request is
 * received") or legacy incoming-webhook URL. Notify-only: the card's one action opens the portal;
 * decisions are taken there (Teams webhooks cannot call back, and MFA step-up needs the portal).
 * One card per event occurrence, to the Teams channel behind the URL, whoever the rule's people are.
 */
export class TeamsChannel implements NotificationChannel {
  readonly type = 'teams';
  readonly name: string;

  constructor(private readonly config: TeamsChannelConfig) {
    this.name = config.name;
  }

  async send(message: OutgoingNotification, signal: AbortSignal): Promise<void> {
    const body = JSON.stringify(teamsMessage(describeNotification(message), message.urgent));
    const answer = await postJson(new URL(this.config.url), body, { ca: this.config.ca, signal });
    if (answer.status >= 200 && answer.status < 300) return;
    // NB. Never the URL in an error: it is the credential, and errors reach the deliveries API.
    const said = `Teams answered ${answer.status}${answer.body ? `: ${answer.body.slice(0, 200)}` : ''}`;
    if (answer.status === 429) throw new RetryLaterError(said, retryAfterMs(answer.headers['retry-after']) ?? 0);
    // A card Teams refuses, or a flow that is gone, stays refused: retrying cannot help.
    if (answer.status === 400 || answer.status === 401 || answer.status === 403 || answer.status === 404 || answer.status === 410) {
      throw new UndeliverableError(`${said} (check the card, or whether the workflow still exists)`);
    }
    throw new Error(said);
  }

  async close(): Promise<void> {}
}

/** The Adaptive Card version used: 1.4 renders in Teams desktop, web and mobile. */
export const ADAPTIVE_CARD_VERSION = '1.4';

/** A Teams message carrying one Adaptive Card, in the shape Workflows and incoming webhooks take. */
export function teamsMessage(content: NotificationContent, urgent: boolean) {
  const body: Record<string, unknown>[] = [
    { type: 'TextBlock', text: content.title, weight: 'Bolder', size: 'Medium', wrap: true, ...(urgent ? { color: 'Attention' } : {}) },
    { type: 'TextBlock', text: content.summary, wrap: true },
  ];
  if (content.facts.length > 0) body.push({ type: 'FactSet', facts: content.facts.map(([title, value]) => ({ title, value })) });
  if (content.note) body.push({ type: 'TextBlock', text: content.note, wrap: true, isSubtle: true, size: 'Small' });
  return {
    type: 'message',
    attachments: [
      {
        contentType: 'application/vnd.microsoft.card.adaptive',
        contentUrl: null,
        content: {
          $schema: 'http://adaptivecards.io/schemas/adaptive-card.json',
          type: 'AdaptiveCard',
          version: ADAPTIVE_CARD_VERSION,
          body,
          ...(content.action ? { actions: [{ type: 'Action.OpenUrl', title: content.action.label, url: content.action.url }] } : {}),
        },
      },
    ],
  };
}
