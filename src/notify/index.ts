import type { ChannelConfig } from '../config/types.js';
import { EmailChannel } from './email.js';
import { TeamsChannel } from './teams.js';
import type { NotificationChannel } from './types.js';

export { RetryLaterError, UndeliverableError, type NotificationChannel, type OutgoingNotification } from './types.js';
export { eventWebhookBody, newWebhookSecret, sendEventWebhook, type WebhookAttempt } from './event-webhook.js';
export { describeNotification, type NotificationContent } from './message.js';

/** The channel for a configured channel; Slack, Teams and webhooks add their case here. */
export function createChannel(config: ChannelConfig): NotificationChannel {
  switch (config.type) {
    case 'email':
      return new EmailChannel(config);
    case 'teams':
      return new TeamsChannel(config);
  }
}
