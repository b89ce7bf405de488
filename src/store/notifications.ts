import { sql, type Selectable } from 'kysely';
import type { Executor } from './executor.js';
import type { DeliveryStatus, NotificationDeliveriesTable, NotificationPreferencesTable } from './schema.js';

/**
 * The notification outbox and what it needs to address people: deliveries (written in the
 * transaction of the change they tell of, sent later by the `notify` job), per-person
 * preferences, and users' email addresses.
 */

export interface NewDelivery {
  readonly id: string;
  readonly dedupeKey: string;
  readonly event: string;
  readonly subjectId: string | null;
  readonly channel: string;
  readonly channelType: string;
  readonly recipient: string;
  readonly urgent: boolean;
  readonly payload: Record<string, unknown>;
}

export interface Delivery extends NewDelivery {
  readonly status: DeliveryStatus;
  readonly attempts: number;
  readonly lastError: string | null;
  readonly createdAt: Date;
  readonly sentAt: Date | null;
  readonly finishedAt: Date | null;
}

function toDelivery(row: Selectable<NotificationDeliveriesTable>): Delivery {
  const date = (value: Date | string | null) => (value === null ? null : new Date(value));
  return {
    id: row.id,
    dedupeKey: row.dedupe_key,
    event: row.event,
    subjectId: row.subject_id,
    channel: row.channel,
    channelType: row.channel_type,
    recipient: row.recipient,
    urgent: row.urgent,
    payload: row.payload,
    status: row.status,
    attempts: row.attempts,
    lastError: row.last_error,
    createdAt: new Date(row.created_at),
    sentAt: date(row.sent_at),
    finishedAt: date(row.finished_at),
  };
}

/**
 * Writes deliveries, skipping any whose dedupe key is already there (a recurring event), and
 * returns the ids of those written.
 */
export async function insertDeliveries(tx: Executor, deliveries: readonly NewDelivery[], now: Date): Promise<string[]> {
  if (deliveries.length === 0) return [];
  const rows = await tx
    .insertInto('notification_deliveries')
    .values(
      deliveries.map((d) => ({
        id: d.id,
        dedupe_key: d.dedupeKey.slice(0, 2048),
        event: d.event,
        subject_id: d.subjectId,
        channel: d.channel,
        channel_type: d.channelType,
        recipient: d.recipient,
        urgent: d.urgent,
        payload: JSON.stringify(d.payload),
        status: 'pending' as const,
        last_error: null,
        created_at: now,
        sent_at: null,
        finished_at: null,
      })),
    )
    .onConflict((oc) => oc.column('dedupe_key').doNothing())
    .returning('id')
    .execute();
  return rows.map((row) => row.id);
}

export async function getDelivery(db: Executor, id: string): Promise<Delivery | undefined> {
  const row = await db.selectFrom('notification_deliveries').selectAll().where('id', '=', id).executeTakeFirst();
  return row ? toDelivery(row) : undefined;
}

/** A delivery as the worker sends it: with its recipient's preferences and address, read together. */
export interface DeliveryToSend {
  readonly delivery: Delivery;
  /** The recipient's preferences when the recipient is a person who set some. */
  readonly preferences: NotificationPreferences | undefined;
  /** The recipient's address when the recipient is an enabled user (null: none on record); undefined: no such user. */
  readonly email: string | null | undefined;
}

/**
 * The deliveries of a round of `notify` jobs, with each recipient's preferences and address and
 * the database's clock: one query for the whole round rather than three per delivery.
 */
export async function deliveriesToSend(db: Executor, ids: readonly string[]): Promise<{ now: Date; deliveries: DeliveryToSend[] }> {
  if (ids.length === 0) return { now: new Date(), deliveries: [] };
  const rows = await db
    .selectFrom('notification_deliveries as d')
    .leftJoin('notification_preferences as p', 'p.principal_id', 'd.recipient')
    .leftJoin('users as u', (join) => join.onRef('u.name', '=', 'd.recipient').on('u.disabled_at', 'is', null))
    .selectAll('d')
    .select([
      'p.principal_id as p_principal_id',
      'p.email_enabled as p_email_enabled',
      'p.quiet_start as p_quiet_start',
      'p.quiet_end as p_quiet_end',
      'p.timezone as p_timezone',
      'u.name as u_name',
      'u.email as u_email',
      sql<Date | string>`now()`.as('db_now'),
    ])
    .where('d.id', 'in', [...ids])
    .execute();
  const now = rows[0] ? new Date(rows[0].db_now) : new Date();
  return {
    now,
    deliveries: rows.map((row) => ({
      delivery: toDelivery(row),
      preferences:
        row.p_principal_id === null
          ? undefined
          : toPreferences({
              principal_id: row.p_principal_id,
              email_enabled: row.p_email_enabled ?? true,
              quiet_start: row.p_quiet_start,
              quiet_end: row.p_quiet_end,
              timezone: row.p_timezone ?? 'UTC',
              updated_at: now,
            }),
      email: row.u_name === null ? undefined : row.u_email,
    })),
  };
}

/** Counts an attempt on each delivery still pending, before the sends; returns the counts by id. */
export async function countDeliveryAttempts(db: Executor, ids: readonly string[]): Promise<Map<string, number>> {
  if (ids.length === 0) return new Map();
  const rows = await db
    .updateTable('notification_deliveries')
    .set({ attempts: sql<number>`attempts + 1` })
    .where('id', 'in', [...ids])
    .where('status', '=', 'pending')
    .returning(['id', 'attempts'])
    .execute();
  return new Map(rows.map((row) => [row.id, row.attempts]));
}

/** Gives back attempts counted for sends that never started (their channel failed first). */
export async function uncountDeliveryAttempts(tx: Executor, ids: readonly string[]): Promise<void> {
  if (ids.length === 0) return;
  await tx
    .updateTable('notification_deliveries')
    .set({ attempts: sql<number>`GREATEST(attempts - 1, 0)` })
    .where('id', 'in', [...ids])
    .where('status', '=', 'pending')
    .execute();
}

/** Sent (handed to the channel), many at once, at the database's now: final. */
export async function markDeliveriesSent(tx: Executor, ids: readonly string[]): Promise<void> {
  if (ids.length === 0) return;
  await tx
    .updateTable('notification_deliveries')
    .set({ status: 'sent', sent_at: sql<Date>`now()`, finished_at: sql<Date>`now()`, last_error: null })
    .where('id', 'in', [...ids])
    .where('status', '=', 'pending')
    .execute();
}

/** Counts an attempt before the send (so one cut short by a crash counts too); returns the count. */
export async function countDeliveryAttempt(db: Executor, id: string): Promise<number> {
  const row = await db
    .updateTable('notification_deliveries')
    .set({ attempts: sql<number>`attempts + 1` })
    .where('id', '=', id)
    .where('status', '=', 'pending')
    .returning('attempts')
    .executeTakeFirst();
  return row?.attempts ?? 0;
}

/** Sent (handed to the channel): final. */
export async function markDeliverySent(tx: Executor, id: string, now: Date): Promise<void> {
  await tx
    .updateTable('notification_deliveries')
    .set({ status: 'sent', sent_at: now, finished_at: now, last_error: null })
    .where('id', '=', id)
    .where('status', '=', 'pending')
    .execute();
}

/** Given up (failed) or not to be sent (skipped: no address, email turned off), with why. */
export async function finishDelivery(tx: Executor, id: string, status: 'failed' | 'skipped', reason: string, now: Date): Promise<void> {
  await tx
    .updateTable('notification_deliveries')
    .set({ status, finished_at: now, last_error: reason.slice(0, 2000) })
    .where('id', '=', id)
    .where('status', '=', 'pending')
    .execute();
}

/** Still pending: why the last attempt did not go through, or why it is held back. */
export async function noteDeliveryError(tx: Executor, id: string, error: string): Promise<void> {
  await tx
    .updateTable('notification_deliveries')
    .set({ last_error: error.slice(0, 2000) })
    .where('id', '=', id)
    .where('status', '=', 'pending')
    .execute();
}

export interface DeliveryFilter {
  readonly status?: DeliveryStatus | undefined;
  readonly event?: string | undefined;
  readonly channel?: string | undefined;
  readonly recipient?: string | undefined;
  readonly subject?: string | undefined;
  /** Page on: deliveries older than this one (ids are time-ordered). */
  readonly before?: string | undefined;
  readonly limit?: number | undefined;
}

/** Deliveries, newest first, filtered; page with `before` = the last id of the previous page. */
export async function listDeliveries(db: Executor, filter: DeliveryFilter = {}): Promise<Delivery[]> {
  let query = db.selectFrom('notification_deliveries').selectAll();
  if (filter.status) query = query.where('status', '=', filter.status);
  if (filter.event) query = query.where('event', '=', filter.event);
  if (filter.channel) query = query.where('channel', '=', filter.channel);
  if (filter.recipient) query = query.where('recipient', '=', filter.recipient);
  if (filter.subject) query = query.where('subject_id', '=', filter.subject);
  if (filter.before) query = query.where('id', '<', filter.before);
  const rows = await query
    .orderBy('id', 'desc')
    .limit(Math.min(Math.max(filter.limit ?? 100, 1), 1000))
    .execute();
  return rows.map(toDelivery);
}

/** Deliveries by status (the pending count is a metric). */
export async function countDeliveries(db: Executor): Promise<Record<DeliveryStatus, number>> {
  const rows = await db
    .selectFrom('notification_deliveries')
    .select(['status', (eb) => eb.fn.countAll<string>().as('n')])
    .groupBy('status')
    .execute();
  const counts: Record<DeliveryStatus, number> = { pending: 0, sent: 0, failed: 0, skipped: 0 };
  for (const row of rows) counts[row.status] = Number(row.n);
  return counts;
}

export interface NotificationPreferences {
  readonly principalId: string;
  readonly emailEnabled: boolean;
  /** Minutes after midnight in `timezone`, or null for no quiet hours. */
  readonly quietHours: { readonly start: number; readonly end: number } | null;
  readonly timezone: string;
}

function toPreferences(row: Selectable<NotificationPreferencesTable>): NotificationPreferences {
  return {
    principalId: row.principal_id,
    emailEnabled: row.email_enabled,
    quietHours: row.quiet_start === null || row.quiet_end === null ? null : { start: row.quiet_start, end: row.quiet_end },
    timezone: row.timezone,
  };
}

/** A person's preferences, or undefined when they never set any (the defaults apply). */
export async function getNotificationPreferences(db: Executor, principalId: string): Promise<NotificationPreferences | undefined> {
  const row = await db.selectFrom('notification_preferences').selectAll().where('principal_id', '=', principalId).executeTakeFirst();
  return row ? toPreferences(row) : undefined;
}

export async function putNotificationPreferences(tx: Executor, preferences: NotificationPreferences, now: Date): Promise<void> {
  const values = {
    email_enabled: preferences.emailEnabled,
    quiet_start: preferences.quietHours?.start ?? null,
    quiet_end: preferences.quietHours?.end ?? null,
    timezone: preferences.timezone,
    updated_at: now,
  };
  await tx
    .insertInto('notification_preferences')
    .values({ principal_id: preferences.principalId, ...values })
    .onConflict((oc) => oc.column('principal_id').doUpdateSet(values))
    .execute();
}

/** The enabled users named, or in one of the groups: the people a notification for them reaches. */
export async function enabledUserNamesIn(db: Executor, names: readonly string[], groups: readonly string[]): Promise<string[]> {
  if (names.length === 0 && groups.length === 0) return [];
  const rows = await db
    .selectFrom('users')
    .select('name')
    .where('disabled_at', 'is', null)
    .where('kind', '=', 'user')
    .where((eb) => {
      const any = [];
      if (names.length > 0) any.push(eb('name', 'in', names));
      if (groups.length > 0) any.push(sql<boolean>`groups ?| ${sql.val(groups)}::text[]`);
      return eb.or(any);
    })
    .orderBy('name')
    .limit(1000)
    .execute();
  return rows.map((row) => row.name);
}

/**
 * The enabled users named, or in any of the groups, with their groups: one query for every
 * audience of a batch of events, each then picked out in memory (see enabledUserNamesIn).
 */
export async function enabledUsersIn(db: Executor, names: readonly string[], groups: readonly string[]): Promise<{ name: string; groups: string[] }[]> {
  if (names.length === 0 && groups.length === 0) return [];
  const rows = await db
    .selectFrom('users')
    .select(['name', 'groups'])
    .where('disabled_at', 'is', null)
    .where('kind', '=', 'user')
    .where((eb) => {
      const any = [];
      if (names.length > 0) any.push(eb('name', 'in', [...new Set(names)]));
      if (groups.length > 0) any.push(sql<boolean>`groups ?| ${sql.val([...new Set(groups)])}::text[]`);
      return eb.or(any);
    })
    .orderBy('name')
    .limit(20_000)
    .execute();
  return rows.map((row) => ({ name: row.name, groups: row.groups }));
}

/** An enabled user's email address (null when none is on record), or undefined for no such user. */
export async function emailOfUser(db: Executor, name: string): Promise<string | null | undefined> {
  const row = await db.selectFrom('users').select('email').where('name', '=', name).where('disabled_at', 'is', null).executeTakeFirst();
  return row ? row.email : undefined;
}

/** Sets (or clears, with null) a user's email address; false when there is no such user. */
export async function setUserEmail(tx: Executor, name: string, email: string | null): Promise<boolean> {
  const result = await tx.updateTable('users').set({ email }).where('name', '=', name).executeTakeFirst();
  return Number(result.numUpdatedRows) > 0;
}
