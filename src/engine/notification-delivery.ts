import { quietHoursEnd } from '../domain/notifications.js';
import type { NotificationEventName } from '../domain/notifications.js';
import { channelTimeoutMs } from '../config/index.js';
import { RetryLaterError, SLACK_CHANNEL_RECIPIENT, UndeliverableError, type OutgoingNotification } from '../notify/index.js';
import {
  completeJob,
  countDeliveryAttempt,
  databaseNow,
  emailOfUser,
  finishDelivery,
  getDelivery,
  getNotificationPreferences,
  markDeliverySent,
  noteDeliveryError,
  retryJob,
  type Delivery,
  type Job,
} from '../store/index.js';
import type { EngineContext } from './context.js';
import { failpoint } from './failpoints.js';
import { CHANNEL_RECIPIENT } from './notification-outbox.js';
import { backoffMs, errorMessage } from './target-calls.js';

/**
 * The `notify` job: sends one delivery from the outbox, outside any transaction, with the
 * channel's deadline. The shape of a connector call: count the attempt, send, record the outcome.
 * A crash after the send and before the record sends the same message again (same delivery id,
 * same Message-ID): at least once, never lost, and recognisable as a repeat.
 */
export async function deliverNotification(context: EngineContext, job: Job, worker: number): Promise<void> {
  const db = context.store.db;
  const delivery = await getDelivery(db, job.subjectId);
  if (!delivery || delivery.status !== 'pending') {
    await completeJob(db, job, worker);
    return;
  }
  const settings = context.config().notifications.channels.get(delivery.channel);
  const channel = context.channel(delivery.channel);
  if (!settings || !channel) {
    await finish(context, job, worker, delivery, 'failed', `channel ${delivery.channel} is no longer in notifications.channels`);
    return;
  }
  const recipient = await addressOf(context, delivery);
  if ('skip' in recipient) {
    await finish(context, job, worker, delivery, 'skipped', recipient.skip);
    return;
  }
  if ('holdUntil' in recipient) {
    // Quiet hours: the job waits; the delivery stays pending with the reason, and no attempt counts.
    const now = await databaseNow(db);
    await db.transaction().execute(async (tx) => {
      await noteDeliveryError(tx, delivery.id, `held for the recipient's quiet hours until ${recipient.holdUntil.toISOString()}`);
      await retryJob(tx, job, worker, Math.max(0, recipient.holdUntil.getTime() - now.getTime()), 'quiet hours');
    });
    return;
  }

  const attempt = await countDeliveryAttempt(db, delivery.id);
  const message: OutgoingNotification = {
    id: delivery.id,
    event: delivery.event as NotificationEventName,
    urgent: delivery.urgent,
    payload: delivery.payload,
    recipient: { user: recipient.user, address: recipient.address },
    portalUrl: context.config().auth.publicUrl,
  };
  const started = performance.now();
  const seconds = () => (performance.now() - started) / 1000;
  try {
    await channel.send(message, AbortSignal.timeout(channelTimeoutMs(settings)));
  } catch (error) {
    const reason = errorMessage(error);
    if (error instanceof UndeliverableError || attempt >= settings.retry.attempts) {
      if (!(error instanceof UndeliverableError && error.outcome === 'skipped')) {
        context.telemetry.notificationSent({ channel: delivery.channel, outcome: 'failed', seconds: seconds() });
      }
      const why = error instanceof UndeliverableError ? reason : `gave up after ${attempt} attempts: ${reason}`;
      await finish(context, job, worker, delivery, error instanceof UndeliverableError ? error.outcome : 'failed', why);
      return;
    }
    context.telemetry.notificationSent({ channel: delivery.channel, outcome: 'error', seconds: seconds() });
    // A 429's Retry-After is honoured even when it asks for longer than the backoff would wait.
    const delay = Math.max(
      backoffMs(attempt, settings.retry.backoffMinMs, settings.retry.backoffMaxMs),
      error instanceof RetryLaterError ? error.retryAfterMs : 0,
    );
    context.logger.warn({ delivery: delivery.id, channel: delivery.channel, attempt, retryInMs: delay, error: reason }, 'notification not sent; will retry');
    await db.transaction().execute(async (tx) => {
      await noteDeliveryError(tx, delivery.id, `attempt ${attempt}: ${reason}`);
      await retryJob(tx, job, worker, delay, reason);
    });
    return;
  }
  failpoint('notify:after-send');
  context.telemetry.notificationSent({ channel: delivery.channel, outcome: 'sent', seconds: seconds() });
  await db.transaction().execute(async (tx) => {
    await markDeliverySent(tx, delivery.id, await databaseNow(tx));
    await completeJob(tx, job, worker);
  });
}

type Recipient = { user?: string; address?: string } | { skip: string } | { holdUntil: Date };

/**
 * Where a delivery goes, after the person's preferences: an address from the rule as it is; a
 * person's own address, unless they turned this channel off, or held back by their quiet hours
 * (never for urgent events: break-glass, a failing revocation).
 */
async function addressOf(context: EngineContext, delivery: Delivery): Promise<Recipient> {
  const db = context.store.db;
  if (delivery.recipient.startsWith('address:')) return { address: delivery.recipient.slice('address:'.length) };
  if (delivery.recipient.startsWith(SLACK_CHANNEL_RECIPIENT)) return { address: delivery.recipient };
  // A post to a chat channel (Teams) reaches the channel, not a person: no preferences apply.
  if (delivery.recipient === CHANNEL_RECIPIENT) return {};
  const user = delivery.recipient;
  const preferences = await getNotificationPreferences(db, user);
  if (preferences && !preferences.emailEnabled && delivery.channelType === 'email') return { skip: `${user} turned email notifications off` };
  if (preferences?.quietHours && !delivery.urgent) {
    const end = quietHoursEnd({ ...preferences.quietHours, timezone: preferences.timezone }, await databaseNow(db));
    if (end) return { holdUntil: end };
  }
  const email = await emailOfUser(db, user);
  if (email === undefined) return { skip: `${user} is not an enabled user` };
  return { user, address: email ?? undefined };
}

async function finish(context: EngineContext, job: Job, worker: number, delivery: Delivery, status: 'failed' | 'skipped', reason: string): Promise<void> {
  if (status === 'failed') context.logger.error({ delivery: delivery.id, channel: delivery.channel, reason }, 'notification given up');
  else context.logger.info({ delivery: delivery.id, channel: delivery.channel, reason }, 'notification skipped');
  await context.store.db.transaction().execute(async (tx) => {
    await finishDelivery(tx, delivery.id, status, reason, await databaseNow(tx));
    await completeJob(tx, job, worker);
  });
}
