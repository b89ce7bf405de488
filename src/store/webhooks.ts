import { sql, type Selectable } from 'kysely';
import type { Executor } from './executor.js';
import type { WebhookDeliveriesTable, WebhookDeliveryStatus, WebhookSubscriptionsTable } from './schema.js';

/**
 * Outbound event webhooks: admin-managed subscriptions and their deliveries (written in the
 * transaction of the change they tell of, sent later by the `webhook` job).
 */

export interface WebhookSubscription {
  readonly id: string;
  readonly url: string;
  readonly description: string;
  /** Event names it receives; empty for all. */
  readonly events: readonly string[];
  readonly allowInsecureHttp: boolean;
  readonly secretSealed: string;
  readonly createdBy: string;
  readonly createdAt: Date;
}

function toSubscription(row: Selectable<WebhookSubscriptionsTable>): WebhookSubscription {
  return {
    id: row.id,
    url: row.url,
    description: row.description,
    events: row.events,
    allowInsecureHttp: row.allow_insecure_http,
    secretSealed: row.secret_sealed,
    createdBy: row.created_by,
    createdAt: new Date(row.created_at),
  };
}

export async function insertWebhookSubscription(tx: Executor, subscription: WebhookSubscription): Promise<void> {
  await tx
    .insertInto('webhook_subscriptions')
    .values({
      id: subscription.id,
      url: subscription.url,
      description: subscription.description,
      events: JSON.stringify(subscription.events),
      allow_insecure_http: subscription.allowInsecureHttp,
      secret_sealed: subscription.secretSealed,
      created_by: subscription.createdBy,
      created_at: subscription.createdAt,
    })
    .execute();
}

/** Every subscription, oldest first (there are few: each is an admin's decision). */
export async function listWebhookSubscriptions(db: Executor): Promise<WebhookSubscription[]> {
  const rows = await db.selectFrom('webhook_subscriptions').selectAll().orderBy('id').limit(1000).execute();
  return rows.map(toSubscription);
}

export async function getWebhookSubscription(db: Executor, id: string): Promise<WebhookSubscription | undefined> {
  const row = await db.selectFrom('webhook_subscriptions').selectAll().where('id', '=', id).executeTakeFirst();
  return row ? toSubscription(row) : undefined;
}

/** Deletes a subscription and its deliveries; false when there was none. */
export async function deleteWebhookSubscription(tx: Executor, id: string): Promise<boolean> {
  const result = await tx.deleteFrom('webhook_subscriptions').where('id', '=', id).executeTakeFirst();
  return Number(result.numDeletedRows) > 0;
}

export interface NewWebhookDelivery {
  readonly id: string;
  readonly subscriptionId: string;
  readonly dedupeKey: string;
  readonly event: string;
  readonly subjectId: string | null;
  readonly body: string;
}

export interface WebhookDelivery extends NewWebhookDelivery {
  readonly status: WebhookDeliveryStatus;
  readonly attempts: number;
  readonly replays: number;
  readonly lastStatus: number | null;
  readonly lastError: string | null;
  readonly createdAt: Date;
  readonly sentAt: Date | null;
  readonly finishedAt: Date | null;
}

function toDelivery(row: Selectable<WebhookDeliveriesTable>): WebhookDelivery {
  const date = (value: Date | string | null) => (value === null ? null : new Date(value));
  return {
    id: row.id,
    subscriptionId: row.subscription_id,
    dedupeKey: row.dedupe_key,
    event: row.event,
    subjectId: row.subject_id,
    body: row.body,
    status: row.status,
    attempts: row.attempts,
    replays: row.replays,
    lastStatus: row.last_status,
    lastError: row.last_error,
    createdAt: new Date(row.created_at),
    sentAt: date(row.sent_at),
    finishedAt: date(row.finished_at),
  };
}

/** Writes deliveries, skipping repeats of an event occurrence per subscription; returns the ids written. */
export async function insertWebhookDeliveries(tx: Executor, deliveries: readonly NewWebhookDelivery[], now: Date): Promise<string[]> {
  if (deliveries.length === 0) return [];
  const rows = await tx
    .insertInto('webhook_deliveries')
    .values(
      deliveries.map((d) => ({
        id: d.id,
        subscription_id: d.subscriptionId,
        dedupe_key: d.dedupeKey.slice(0, 2048),
        event: d.event,
        subject_id: d.subjectId,
        body: d.body,
        status: 'pending' as const,
        last_status: null,
        last_error: null,
        created_at: now,
        sent_at: null,
        finished_at: null,
      })),
    )
    .onConflict((oc) => oc.columns(['subscription_id', 'dedupe_key']).doNothing())
    .returning('id')
    .execute();
  return rows.map((row) => row.id);
}

export async function getWebhookDelivery(db: Executor, id: string): Promise<WebhookDelivery | undefined> {
  const row = await db.selectFrom('webhook_deliveries').selectAll().where('id', '=', id).executeTakeFirst();
  return row ? toDelivery(row) : undefined;
}

/** Counts an attempt before the send (so one cut short by a crash counts too); returns the count. */
export async function countWebhookAttempt(db: Executor, id: string): Promise<number> {
  const row = await db
    .updateTable('webhook_deliveries')
    .set({ attempts: sql<number>`attempts + 1` })
    .where('id', '=', id)
    .where('status', '=', 'pending')
    .returning('attempts')
    .executeTakeFirst();
  return row?.attempts ?? 0;
}

/** The outcome of an attempt: sent (final), failed (final, given up) or still pending with why. */
export async function recordWebhookAttempt(
  tx: Executor,
  id: string,
  outcome: { status: WebhookDeliveryStatus; httpStatus: number | null; error: string | null },
  now: Date,
): Promise<void> {
  await tx
    .updateTable('webhook_deliveries')
    .set({
      status: outcome.status,
      last_status: outcome.httpStatus,
      last_error: outcome.error?.slice(0, 2000) ?? null,
      ...(outcome.status === 'sent' ? { sent_at: now } : {}),
      ...(outcome.status === 'pending' ? {} : { finished_at: now }),
    })
    .where('id', '=', id)
    .where('status', '=', 'pending')
    .execute();
}

export interface WebhookDeliveryFilter {
  readonly subscriptionId?: string | undefined;
  readonly status?: WebhookDeliveryStatus | undefined;
  /** Page on: deliveries older than this one (ids are time-ordered). */
  readonly before?: string | undefined;
  readonly limit?: number | undefined;
}

/** Deliveries, newest first, filtered; page with `before` = the last id of the previous page. */
export async function listWebhookDeliveries(db: Executor, filter: WebhookDeliveryFilter = {}): Promise<WebhookDelivery[]> {
  let query = db.selectFrom('webhook_deliveries').selectAll();
  if (filter.subscriptionId) query = query.where('subscription_id', '=', filter.subscriptionId);
  if (filter.status) query = query.where('status', '=', filter.status);
  if (filter.before) query = query.where('id', '<', filter.before);
  const rows = await query
    .orderBy('id', 'desc')
    .limit(Math.min(Math.max(filter.limit ?? 100, 1), 1000))
    .execute();
  return rows.map(toDelivery);
}

/**
 * Puts a subscription's deliveries with ids in [from, to] back to pending for another round of
 * attempts (a replay); at most `limit`. Returns the ids, oldest first.
 */
export async function reopenWebhookDeliveries(tx: Executor, subscriptionId: string, from: string, to: string, limit: number): Promise<string[]> {
  const rows = await tx
    .updateTable('webhook_deliveries')
    .set({ status: 'pending', attempts: 0, replays: sql<number>`replays + 1`, finished_at: null, last_error: null })
    .where(
      'id',
      'in',
      tx
        .selectFrom('webhook_deliveries')
        .select('id')
        .where('subscription_id', '=', subscriptionId)
        .where('id', '>=', from)
        .where('id', '<=', to)
        .orderBy('id')
        .limit(limit),
    )
    .returning('id')
    .execute();
  return rows.map((row) => row.id).sort();
}
