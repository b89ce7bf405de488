import type { ChannelConfig } from '../config/types.js';
import { EmailChannel } from './email.js';
import { SlackChannel, type SlackDirectory } from './slack.js';
import { TeamsChannel } from './teams.js';
import type { NotificationChannel } from './types.js';

export { RetryLaterError, UndeliverableError, type NotificationChannel, type OutgoingNotification } from './types.js';
export { eventWebhookBody, newWebhookSecret, sendEventWebhook, type WebhookAttempt } from './event-webhook.js';
export { describeNotification, type NotificationContent } from './message.js';
export { SlackChannel, SLACK_CHANNEL_RECIPIENT, APPROVE_ACTION, DENY_ACTION, OPEN_ACTION, type SlackDirectory, type SlackMessageRef } from './slack.js';
export { checkSlackSignature, slackSignature, SLACK_SIGNATURE_WINDOW_MS, type SignatureCheck } from './slack-signature.js';

/** What channels need besides their config (the engine gives it). */
export interface ChannelDependencies {
  readonly slack: SlackDirectory;
}

/** The channel for a configured channel; Teams and webhooks add their case here. */
export function createChannel(config: ChannelConfig, dependencies: ChannelDependencies): NotificationChannel {
  switch (config.type) {
    case 'email':
      return new EmailChannel(config);
    case 'slack':
      return new SlackChannel(config, dependencies.slack);
    case 'teams':
      return new TeamsChannel(config);
  }
}
