import { quietHoursEnd } from '../domain/notifications.js';
import type { NotificationEventName } from '../domain/notifications.js';
import { channelTimeoutMs } from '../config/index.js';
import type { ChannelConfig } from '../config/types.js';
import { RetryLaterError, SLACK_CHANNEL_RECIPIENT, UndeliverableError, type NotificationChannel, type OutgoingNotification } from '../notify/index.js';
import {
  completeJobs,
  countDeliveryAttempts,
  databaseNow,
  deliveriesToSend,
  finishDelivery,
  markDeliveriesSent,
  noteDeliveryError,
  retryJob,
  retryJobAt,
  uncountDeliveryAttempts,
  type Delivery,
  type DeliveryToSend,
  type Job,
} from '../store/index.js';
import type { EngineContext } from './context.js';
import { failpoint } from './failpoints.js';
import { CHANNEL_RECIPIENT } from './notification-outbox.js';
import { backoffMs, errorMessage } from './target-calls.js';

/** Sends at once on a channel that does not say how many it takes. */
const DEFAULT_PARALLEL_SENDS = 8;

/**
 * The `notify` jobs of one round, together: the deliveries, their recipients' preferences and
 * addresses read in one query, the attempts counted in one statement, the sends overlapping on
 * each channel (one per pooled SMTP connection), and every outcome recorded in one transaction.
 * All of it outside any transaction but the last, so a slow channel holds no database session.
 * The shape of a connector call still: count the attempt, send, record the outcome. A crash after
 * a send and before the record sends that message again (same delivery id, same Message-ID): at
 * least once, never lost, and recognisable as a repeat.
 */
export async function deliverNotifications(context: EngineContext, jobs: readonly Job[], worker: number): Promise<void> {
  const db = context.store.db;
  const { now, deliveries } = await deliveriesToSend(
    db,
    jobs.map((job) => job.subjectId),
  );
  const byId = new Map(deliveries.map((d) => [d.delivery.id, d]));
  const outcomes = new Outcomes();
  const sends: Send[] = [];
  for (const job of jobs) {
    const found = byId.get(job.subjectId);
    if (!found || found.delivery.status !== 'pending') {
      outcomes.done(job);
      continue;
    }
    const { delivery } = found;
    const settings = context.config().notifications.channels.get(delivery.channel);
    const channel = context.channel(delivery.channel);
    if (!settings || !channel) {
      outcomes.finish(job, delivery, 'failed', `channel ${delivery.channel} is no longer in notifications.channels`);
      continue;
    }
    const recipient = addressOf(found, now);
    if ('skip' in recipient) outcomes.finish(job, delivery, 'skipped', recipient.skip);
    else if ('holdUntil' in recipient) {
      // Quiet hours: the job waits; the delivery stays pending with the reason, and no attempt counts.
      const note = `held for the recipient's quiet hours until ${recipient.holdUntil.toISOString()}`;
      // NB. Due at the end itself (by the database clock), not "now + the wait", which drifts by the round's length.
      outcomes.retry(job, delivery, recipient.holdUntil, note, 'quiet hours');
    } else sends.push({ job, delivery, settings, channel, recipient, attempt: 0 });
  }

  const attempts = await countDeliveryAttempts(
    db,
    sends.map((s) => s.delivery.id),
  );
  const counted: Send[] = [];
  for (const send of sends) {
    const attempt = attempts.get(send.delivery.id);
    // Finished meanwhile (another worker took the job over after our lease ran out): nothing to send.
    if (attempt === undefined) outcomes.done(send.job);
    else counted.push({ ...send, attempt });
  }
  const byChannel = new Map<string, Send[]>();
  for (const send of counted) byChannel.set(send.delivery.channel, [...(byChannel.get(send.delivery.channel) ?? []), send]);
  await Promise.all([...byChannel.values()].map((group) => sendOnChannel(context, group, outcomes)));
  await outcomes.record(context, worker);
}

interface Send {
  readonly job: Job;
  readonly delivery: Delivery;
  readonly settings: ChannelConfig;
  readonly channel: NotificationChannel;
  readonly recipient: { user?: string; address?: string };
  readonly attempt: number;
}

/**
 * The sends of one channel, as many at once as it takes. NB. A channel that is down (a send that
 * fails for a reason other than the message) trips the round: the sends not started yet are put
 * back unattempted with the same backoff, rather than each waiting out its own timeout in turn.
 */
async function sendOnChannel(context: EngineContext, group: readonly Send[], outcomes: Outcomes): Promise<void> {
  const queue = [...group];
  const channel = group[0]!.channel;
  let down: { reason: string; delayMs: number } | undefined;
  const lane = async () => {
    for (let send = queue.shift(); send; send = queue.shift()) {
      if (down) {
        outcomes.untried(send, down.delayMs, `not tried: channel ${send.delivery.channel} failed on another message (${down.reason})`);
        continue;
      }
      const failure = await sendOne(context, send, outcomes);
      if (failure && !down) down = failure;
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(channel.parallelSends ?? DEFAULT_PARALLEL_SENDS, group.length)) }, lane));
}

/** One send and its outcome; returns the channel's failure when it looks down (to stop the round). */
async function sendOne(context: EngineContext, send: Send, outcomes: Outcomes): Promise<{ reason: string; delayMs: number } | undefined> {
  const { delivery, settings, channel, attempt } = send;
  const message: OutgoingNotification = {
    id: delivery.id,
    event: delivery.event as NotificationEventName,
    urgent: delivery.urgent,
    payload: delivery.payload,
    recipient: send.recipient,
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
      outcomes.finish(send.job, delivery, error instanceof UndeliverableError ? error.outcome : 'failed', why);
      return undefined;
    }
    context.telemetry.notificationSent({ channel: delivery.channel, outcome: 'error', seconds: seconds() });
    // A 429's Retry-After is honoured even when it asks for longer than the backoff would wait.
    const delay = Math.max(
      backoffMs(attempt, settings.retry.backoffMinMs, settings.retry.backoffMaxMs),
      error instanceof RetryLaterError ? error.retryAfterMs : 0,
    );
    context.logger.warn({ delivery: delivery.id, channel: delivery.channel, attempt, retryInMs: delay, error: reason }, 'notification not sent; will retry');
    outcomes.retry(send.job, delivery, delay, `attempt ${attempt}: ${reason}`, reason);
    return { reason, delayMs: delay };
  }
  failpoint('notify:after-send');
  context.telemetry.notificationSent({ channel: delivery.channel, outcome: 'sent', seconds: seconds() });
  outcomes.sent(send.job, delivery);
  return undefined;
}

type Recipient = { user?: string; address?: string } | { skip: string } | { holdUntil: Date };

/**
 * Where a delivery goes, after the person's preferences: an address from the rule as it is; a
 * person's own address, unless they turned this channel off, or held back by their quiet hours
 * (never for urgent events: break-glass, a failing revocation).
 */
function addressOf(found: DeliveryToSend, now: Date): Recipient {
  const { delivery, preferences, email } = found;
  if (delivery.recipient.startsWith('address:')) return { address: delivery.recipient.slice('address:'.length) };
  if (delivery.recipient.startsWith(SLACK_CHANNEL_RECIPIENT)) return { address: delivery.recipient };
  // A post to a chat channel (Teams) reaches the channel, not a person: no preferences apply.
  if (delivery.recipient === CHANNEL_RECIPIENT) return {};
  const user = delivery.recipient;
  if (preferences && !preferences.emailEnabled && delivery.channelType === 'email') return { skip: `${user} turned email notifications off` };
  if (preferences?.quietHours && !delivery.urgent) {
    const end = quietHoursEnd({ ...preferences.quietHours, timezone: preferences.timezone }, now);
    if (end) return { holdUntil: end };
  }
  if (email === undefined) return { skip: `${user} is not an enabled user` };
  return { user, address: email ?? undefined };
}

/** What became of each job of the round, recorded together at its end. */
class Outcomes {
  private readonly completed: Job[] = [];
  private readonly sentIds: string[] = [];
  private readonly finished: { delivery: Delivery; status: 'failed' | 'skipped'; reason: string }[] = [];
  private readonly retries: { job: Job; delivery: Delivery; after: number | Date; note: string; reason: string }[] = [];
  private readonly uncounted: string[] = [];

  done(job: Job): void {
    this.completed.push(job);
  }

  sent(job: Job, delivery: Delivery): void {
    this.sentIds.push(delivery.id);
    this.completed.push(job);
  }

  finish(job: Job, delivery: Delivery, status: 'failed' | 'skipped', reason: string): void {
    this.finished.push({ delivery, status, reason });
    this.completed.push(job);
  }

  /** Due again `after` milliseconds from the database's now, or at a given time. */
  retry(job: Job, delivery: Delivery, after: number | Date, note: string, reason: string): void {
    this.retries.push({ job, delivery, after, note, reason });
  }

  /** Counted but never sent (its channel tripped the round): the attempt is given back. */
  untried(send: Send, delayMs: number, note: string): void {
    this.uncounted.push(send.delivery.id);
    this.retry(send.job, send.delivery, delayMs, note, note);
  }

  /** One transaction for the round: sent rows in one statement, finished jobs in another. */
  async record(context: EngineContext, worker: number): Promise<void> {
    for (const { delivery, status, reason } of this.finished) {
      if (status === 'failed') context.logger.error({ delivery: delivery.id, channel: delivery.channel, reason }, 'notification given up');
      else context.logger.info({ delivery: delivery.id, channel: delivery.channel, reason }, 'notification skipped');
    }
    await context.store.db.transaction().execute(async (tx) => {
      await markDeliveriesSent(tx, this.sentIds);
      if (this.finished.length > 0) {
        const now = await databaseNow(tx);
        for (const { delivery, status, reason } of this.finished) await finishDelivery(tx, delivery.id, status, reason, now);
      }
      await uncountDeliveryAttempts(tx, this.uncounted);
      for (const { job, delivery, after, note, reason } of this.retries) {
        await noteDeliveryError(tx, delivery.id, note);
        if (after instanceof Date) await retryJobAt(tx, job, worker, after, reason);
        else await retryJob(tx, job, worker, after, reason);
      }
      await completeJobs(tx, this.completed, worker);
    });
  }
}
