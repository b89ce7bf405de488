import type { Logger } from 'pino';
import { channelTimeoutMs } from '../config/index.js';
import type { EffectiveConfig } from '../config/types.js';
import { LapseError } from '../domain/errors.js';
import { newId } from '../domain/ids.js';
import { formatTimeOfDay, parseTimeOfDay, preferencesInput, type PreferencesInput } from '../domain/notifications.js';
import type { Principal } from '../domain/principal.js';
import { createChannel, SLACK_CHANNEL_RECIPIENT, type ChannelDependencies, type NotificationChannel } from '../notify/index.js';
import {
  countDeliveries,
  emailOfUser,
  getNotificationPreferences,
  listDeliveries,
  NOTIFICATION_JOB_KINDS,
  putNotificationPreferences,
  type DeliveryFilter,
} from '../store/index.js';
import { transact, type EngineContext } from './context.js';
import { parseInput } from './inputs.js';
import { deliverNotifications } from './notification-delivery.js';
import { deliverWebhook } from './event-webhooks.js';
import { notifyEndingSoon, notifyStillPending } from './notification-timers.js';
import { Scheduler } from './scheduler.js';
import { errorMessage } from './target-calls.js';

/**
 * The channels of the config in force, built once per config: a reload builds the new ones and
 * closes the old (their pooled SMTP connections). Warns loudly about plain SMTP and missing links.
 */
export class NotificationChannels {
  private channels = new Map<string, NotificationChannel>();

  constructor(
    private readonly logger: Logger,
    private readonly dependencies: ChannelDependencies,
  ) {}

  use(config: EffectiveConfig): void {
    const previous = this.channels;
    this.channels = new Map([...config.notifications.channels.values()].map((c) => [c.name, createChannel(c, this.dependencies)]));
    for (const channel of previous.values()) void channel.close();
    for (const c of config.notifications.channels.values()) {
      if (c.type === 'email' && c.smtp.allowInsecure) {
        this.logger.warn(
          { channel: c.name, host: c.smtp.host },
          `notifications.channels.${c.name}.smtp.allowInsecure is on: mail and the SMTP password travel unencrypted (loopback only); never use this in production`,
        );
      }
    }
    if (config.notifications.channels.size > 0 && !config.auth.publicUrl) {
      this.logger.warn('auth.publicUrl is not set: notifications carry no links to the portal (each says so); set it to the URL people use to reach Lapse');
    }
  }

  get(name: string): NotificationChannel | undefined {
    return this.channels.get(name);
  }

  async close(): Promise<void> {
    await Promise.all([...this.channels.values()].map((c) => c.close()));
  }
}

/**
 * The worker of notification jobs: a scheduler of its own, claiming only notification jobs, so a
 * stalled SMTP server holds up mail and nothing else (provisioning and revocation have theirs).
 */
export function notificationScheduler(context: EngineContext, pollIntervalMs: () => number): Scheduler {
  return new Scheduler({
    store: context.store,
    logger: context.logger,
    pollIntervalMs,
    kinds: { only: NOTIFICATION_JOB_KINDS },
    // The timers' jobs (each a small transaction) run side by side with the round's sends.
    concurrency: 4,
    // NB. A round's sends go out together (deliverNotifications), so a burst of 1,000 is four
    // rounds of a few statements each rather than thousands of single-row queries.
    batchSize: 250,
    batch: { kinds: ['notify'], run: (jobs, worker) => deliverNotifications(context, jobs, worker) },
    handlers: {
      notify_ending: (job, worker) => notifyEndingSoon(context, job, worker),
      notify_reminder: (job, worker) => notifyStillPending(context, job, worker, 'request.reminder'),
      notify_escalation: (job, worker) => notifyStillPending(context, job, worker, 'request.escalated'),
      webhook: (job, worker) => deliverWebhook(context, job, worker),
    },
  });
}

export interface NotificationPreferencesView {
  readonly email: boolean;
  readonly quietHours: { readonly start: string; readonly end: string } | null;
  readonly timezone: string;
}

/** The notification use-cases the API and CLI call. */
export function notificationUseCases(context: EngineContext) {
  return {
    /** Deliveries, newest first (admins: what was sent, what waits, what failed and why). */
    deliveries: (filter: DeliveryFilter = {}) => listDeliveries(context.store.db, filter),
    /** Deliveries by status, for /metrics. */
    counts: () => countDeliveries(context.store.db),

    /** A person's preferences (the defaults when they never set any: email on, no quiet hours). */
    async preferences(principalId: string): Promise<NotificationPreferencesView> {
      const stored = await getNotificationPreferences(context.store.db, principalId);
      if (!stored) return { email: true, quietHours: null, timezone: 'UTC' };
      return {
        email: stored.emailEnabled,
        quietHours: stored.quietHours && { start: formatTimeOfDay(stored.quietHours.start), end: formatTimeOfDay(stored.quietHours.end) },
        timezone: stored.timezone,
      };
    },

    /** Replaces a person's own preferences; audited. */
    async setPreferences(by: Principal, raw: PreferencesInput): Promise<NotificationPreferencesView> {
      const input = parseInput(preferencesInput, raw, 'notification preferences');
      const quietHours = input.quietHours && { start: parseTimeOfDay(input.quietHours.start)!, end: parseTimeOfDay(input.quietHours.end)! };
      await transact(context, async (unit) => {
        await putNotificationPreferences(unit.tx, { principalId: by.id, emailEnabled: input.email, quietHours, timezone: input.timezone }, unit.now);
        await unit.audit({
          action: 'notifications.preferences_set',
          actor: by.id,
          subject: by.id,
          data: { email: input.email, quietHours: input.quietHours, timezone: input.timezone },
        });
      });
      return { email: input.email, quietHours: input.quietHours, timezone: input.timezone };
    },

    /**
     * Sends a test message over a channel now (not through the outbox: the admin wants the answer),
     * to `to` or to the admin's own address. Audited, whether it worked or not.
     */
    async sendTest(by: Principal, channelName: string, to?: string): Promise<{ channel: string; to: string; id: string }> {
      const settings = context.config().notifications.channels.get(channelName);
      const channel = context.channel(channelName);
      if (!settings || !channel) {
        throw new LapseError('not_found', `there is no notification channel ${channelName}`, {
          where: channelName,
          hint: `Channels are named under notifications.channels in lapse.yaml (configured: ${[...context.config().notifications.channels.keys()].join(', ') || 'none'}).`,
        });
      }
      // Slack: `to` is a Slack channel id; without it, the admin's own DM (their linked Slack user).
      const slackTo = settings.type === 'slack' ? (to === undefined ? '' : `${SLACK_CHANNEL_RECIPIENT}${to}`) : undefined;
      const found = slackTo ?? to ?? (await emailOfUser(context.store.db, by.id)) ?? undefined;
      if (found === undefined) {
        throw new LapseError('validation_failed', `there is no email address on record for ${by.id}`, {
          where: 'to',
          hint: 'Pass an address (lapse notify test <channel> --to you@example.com), or have an admin set yours (lapse admin user set-email).',
        });
      }
      const address = found || `${by.id} (Slack DM)`;
      const id = newId('delivery');
      const payload = { entitlement: 'test/notification', requester: by.id, reason: `a test of channel ${channelName}`, requestId: 'test' };
      try {
        await channel.send(
          {
            id,
            event: 'request.pending',
            urgent: false,
            payload: { ...payload, stage: 'test' },
            recipient: { user: by.id, ...(found ? { address: found } : {}) },
            portalUrl: context.config().auth.publicUrl,
          },
          AbortSignal.timeout(channelTimeoutMs(settings)),
        );
      } catch (error) {
        const message = errorMessage(error);
        await transact(context, (unit) =>
          unit.audit({ action: 'notifications.test_failed', actor: by.id, subject: channelName, data: { channel: channelName, to: address, error: message } }),
        );
        throw new LapseError('channel_failed', `channel ${channelName} could not send: ${message}`, {
          where: `notifications.channels.${channelName}`,
          hint: 'Check the SMTP host, port, TLS settings (smtp.secure, smtp.ca) and credentials; the server log has the details.',
        });
      }
      await transact(context, (unit) =>
        unit.audit({ action: 'notifications.test_sent', actor: by.id, subject: channelName, data: { channel: channelName, to: address, id } }),
      );
      return { channel: channelName, to: address, id };
    },
  };
}

export type NotificationUseCases = ReturnType<typeof notificationUseCases>;
