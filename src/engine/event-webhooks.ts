import { LapseError } from '../domain/errors.js';
import { MAX_REPLAY, webhookReplayInput, webhookSubscriptionInput, type WebhookReplayInput, type WebhookSubscriptionInput } from '../domain/event-webhooks.js';
import { newId } from '../domain/ids.js';
import type { Principal } from '../domain/principal.js';
import { newWebhookSecret, sendEventWebhook } from '../notify/index.js';
import {
  completeJob,
  countWebhookAttempt,
  databaseNow,
  deleteWebhookSubscription,
  getWebhookDelivery,
  getWebhookSubscription,
  insertWebhookSubscription,
  listWebhookDeliveries,
  listWebhookSubscriptions,
  recordWebhookAttempt,
  reopenWebhookDeliveries,
  retryJob,
  scheduleJob,
  type Job,
  type WebhookDelivery,
  type WebhookDeliveryFilter,
  type WebhookSubscription,
} from '../store/index.js';
import { transact, type EngineContext } from './context.js';
import { parseInput } from './inputs.js';
import { backoffMs, errorMessage } from './target-calls.js';

/**
 * Outbound event webhooks (docs/notifications.md): admin-managed subscriptions, the `webhook` job
 * that sends one delivery, and replays. Events are written by the outbox (webhook-outbox.ts).
 */

export interface WebhookSubscriptionView {
  readonly id: string;
  readonly url: string;
  readonly description: string;
  /** Empty: every event. */
  readonly events: string[];
  readonly allowInsecureHttp: boolean;
  readonly createdBy: string;
  readonly createdAt: string;
}

export interface WebhookDeliveryView {
  readonly id: string;
  readonly subscription: string;
  readonly event: string;
  readonly subject: string | null;
  readonly status: 'pending' | 'sent' | 'failed';
  readonly attempts: number;
  readonly replays: number;
  readonly lastStatus: number | null;
  readonly lastError: string | null;
  readonly createdAt: string;
  readonly sentAt: string | null;
  readonly finishedAt: string | null;
}

/** The context a subscription's secret is sealed to: a sealed value copied to another row does not open. */
const sealContext = (id: string) => `webhook:${id}`;

/** A URL as the audit log records it: the query may carry a receiver's token, so it is left out. */
const auditedUrl = (url: string) => {
  const parsed = new URL(url);
  return `${parsed.origin}${parsed.pathname}${parsed.search ? '?…' : ''}`;
};

function subscriptionView(s: WebhookSubscription): WebhookSubscriptionView {
  return {
    id: s.id,
    url: s.url,
    description: s.description,
    events: [...s.events],
    allowInsecureHttp: s.allowInsecureHttp,
    createdBy: s.createdBy,
    createdAt: s.createdAt.toISOString(),
  };
}

function deliveryView(d: WebhookDelivery): WebhookDeliveryView {
  const iso = (date: Date | null) => date?.toISOString() ?? null;
  return {
    id: d.id,
    subscription: d.subscriptionId,
    event: d.event,
    subject: d.subjectId,
    status: d.status,
    attempts: d.attempts,
    replays: d.replays,
    lastStatus: d.lastStatus,
    lastError: d.lastError,
    createdAt: d.createdAt.toISOString(),
    sentAt: iso(d.sentAt),
    finishedAt: iso(d.finishedAt),
  };
}

const notFound = (id: string) =>
  new LapseError('not_found', `there is no webhook subscription ${id}`, { where: id, hint: 'List them with `lapse webhook ls` (GET /api/v1/webhooks).' });

/**
 * The use-cases the API and CLI call. Authorization (admins only) is the route's; every change is
 * audited. `startWorker` starts this replica's notification worker once there is something to send.
 */
export function webhookUseCases(context: EngineContext, startWorker: () => Promise<void>) {
  const db = () => context.store.db;
  const existing = async (id: string) => {
    const subscription = await getWebhookSubscription(db(), id);
    if (!subscription) throw notFound(id);
    return subscription;
  };
  return {
    /** Creates a subscription; the signing secret is returned here only, and stored sealed. */
    async create(by: Principal, raw: WebhookSubscriptionInput): Promise<{ subscription: WebhookSubscriptionView; secret: string }> {
      const input = parseInput(webhookSubscriptionInput, raw, 'webhook subscription');
      const id = newId('webhook');
      const secret = newWebhookSecret();
      const subscription = await transact(context, async (unit) => {
        const created: WebhookSubscription = {
          id,
          url: input.url,
          description: input.description,
          events: input.events,
          allowInsecureHttp: input.allowInsecureHttp,
          secretSealed: context.sealer.seal(secret, sealContext(id)),
          createdBy: by.id,
          createdAt: unit.now,
        };
        await insertWebhookSubscription(unit.tx, created);
        await unit.audit({
          action: 'webhook.created',
          actor: by.id,
          subject: id,
          data: { url: auditedUrl(input.url), events: input.events, allowInsecureHttp: input.allowInsecureHttp },
        });
        return created;
      });
      if (input.allowInsecureHttp) {
        context.logger.warn({ webhook: id, url: auditedUrl(input.url) }, 'webhook subscription allows plain http: events can be read and changed on the way');
      }
      await startWorker();
      return { subscription: subscriptionView(subscription), secret };
    },

    list: async (): Promise<WebhookSubscriptionView[]> => (await listWebhookSubscriptions(db())).map(subscriptionView),

    get: async (id: string): Promise<WebhookSubscriptionView> => subscriptionView(await existing(id)),

    /** Deletes a subscription with its deliveries (pending ones are not sent); audited. */
    async remove(by: Principal, id: string): Promise<void> {
      await transact(context, async (unit) => {
        const subscription = await getWebhookSubscription(unit.tx, id);
        if (!subscription || !(await deleteWebhookSubscription(unit.tx, id))) throw notFound(id);
        await unit.audit({ action: 'webhook.deleted', actor: by.id, subject: id, data: { url: auditedUrl(subscription.url) } });
      });
    },

    /** A subscription's deliveries, newest first. */
    async deliveries(id: string, filter: Omit<WebhookDeliveryFilter, 'subscriptionId'> = {}): Promise<WebhookDeliveryView[]> {
      await existing(id);
      return (await listWebhookDeliveries(db(), { ...filter, subscriptionId: id })).map(deliveryView);
    },

    /**
     * Sends deliveries again (one, or a range by id), whatever became of them: same body, same
     * `webhook-id` (receivers that dedupe drop what they already have), a fresh timestamp and
     * signature, and a new round of attempts. Audited.
     */
    async replay(by: Principal, id: string, raw: WebhookReplayInput): Promise<{ replayed: string[] }> {
      const input = parseInput(webhookReplayInput, raw, 'webhook replay');
      const [from, to] = 'delivery' in input ? [input.delivery, input.delivery] : [input.from, input.to];
      const replayed = await transact(context, async (unit) => {
        if (!(await getWebhookSubscription(unit.tx, id))) throw notFound(id);
        const ids = await reopenWebhookDeliveries(unit.tx, id, from, to, MAX_REPLAY);
        if (ids.length === 0) {
          throw new LapseError('not_found', `subscription ${id} has no deliveries ${from === to ? from : `from ${from} to ${to}`}`, {
            where: 'delivery' in input ? 'delivery' : 'from',
            hint: `List its deliveries with \`lapse webhook deliveries ${id}\` (GET /api/v1/webhooks/${id}/deliveries).`,
          });
        }
        for (const delivery of ids) await scheduleJob(unit.tx, 'webhook', delivery, { delayMs: 0 });
        await unit.audit({ action: 'webhook.replayed', actor: by.id, subject: id, data: { from, to, count: ids.length } });
        unit.wake();
        return ids;
      });
      context.pokeNotifier();
      await startWorker();
      return { replayed };
    },
  };
}

export type WebhookUseCases = ReturnType<typeof webhookUseCases>;

/**
 * The `webhook` job: sends one delivery outside any transaction, signed for this attempt. The
 * shape of the email worker: count the attempt, send, record the outcome; a crash in between sends
 * the same delivery again (same `webhook-id`), so receivers see at least once, never a new event.
 */
export async function deliverWebhook(context: EngineContext, job: Job, worker: number): Promise<void> {
  const db = context.store.db;
  const delivery = await getWebhookDelivery(db, job.subjectId);
  const subscription = delivery && (await getWebhookSubscription(db, delivery.subscriptionId));
  if (!delivery || delivery.status !== 'pending' || !subscription) {
    await completeJob(db, job, worker);
    return;
  }
  const { timeoutMs, retry } = context.config().notifications.webhooks;
  const attempt = await countWebhookAttempt(db, delivery.id);
  const started = performance.now();
  const seconds = () => (performance.now() - started) / 1000;
  let outcome: { ok: boolean; status: number | null; error: string; retryAfterMs?: number | undefined };
  try {
    const secret = context.sealer.open(subscription.secretSealed, sealContext(subscription.id));
    const answer = await sendEventWebhook({ url: subscription.url, secret }, { id: delivery.id, body: delivery.body }, AbortSignal.timeout(timeoutMs));
    outcome = {
      ok: answer.ok,
      status: answer.status,
      error: `the receiver answered ${answer.status}${answer.answer ? `: ${answer.answer}` : ''}`,
      retryAfterMs: answer.retryAfterMs,
    };
  } catch (error) {
    outcome = { ok: false, status: null, error: errorMessage(error) };
  }
  const now = await databaseNow(db);
  if (outcome.ok) {
    context.telemetry.notificationSent({ channel: 'webhooks', outcome: 'sent', seconds: seconds() });
    await db.transaction().execute(async (tx) => {
      await recordWebhookAttempt(tx, delivery.id, { status: 'sent', httpStatus: outcome.status, error: null }, now);
      await completeJob(tx, job, worker);
    });
    return;
  }
  if (attempt >= retry.attempts) {
    context.telemetry.notificationSent({ channel: 'webhooks', outcome: 'failed', seconds: seconds() });
    context.logger.error({ delivery: delivery.id, webhook: subscription.id, attempt, error: outcome.error }, 'webhook delivery given up');
    await db.transaction().execute(async (tx) => {
      await recordWebhookAttempt(
        tx,
        delivery.id,
        { status: 'failed', httpStatus: outcome.status, error: `gave up after ${attempt} attempts: ${outcome.error}` },
        now,
      );
      await completeJob(tx, job, worker);
    });
    return;
  }
  context.telemetry.notificationSent({ channel: 'webhooks', outcome: 'error', seconds: seconds() });
  // A 429's Retry-After is honoured even when it asks for longer than the backoff would wait.
  const delay = Math.max(backoffMs(attempt, retry.backoffMinMs, retry.backoffMaxMs), outcome.retryAfterMs ?? 0);
  context.logger.warn(
    { delivery: delivery.id, webhook: subscription.id, attempt, retryInMs: delay, error: outcome.error },
    'webhook not delivered; will retry',
  );
  await db.transaction().execute(async (tx) => {
    await recordWebhookAttempt(tx, delivery.id, { status: 'pending', httpStatus: outcome.status, error: `attempt ${attempt}: ${outcome.error}` }, now);
    await retryJob(tx, job, worker, delay, outcome.error);
  });
}
