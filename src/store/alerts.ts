import { sql, type Selectable } from 'kysely';
import type { AlertSeverity, AlertStatus, RaisedAlert } from '../domain/anomalies.js';
import type { Executor } from './executor.js';
import type { AlertsTable } from './schema.js';

/**
 * Anomaly alerts (docs/monitoring.md#alerts), the detectors' durable cursor over the audit chain,
 * and their decaying burst counters.
 */

export interface Alert {
  readonly id: string;
  readonly kind: string;
  readonly severity: AlertSeverity;
  readonly status: AlertStatus;
  readonly principalId: string | null;
  readonly subject: string | null;
  readonly summary: string;
  readonly detail: Readonly<Record<string, unknown>>;
  readonly occurrences: number;
  readonly raisedAt: Date;
  readonly lastSeenAt: Date;
  readonly acknowledgedAt: Date | null;
  readonly acknowledgedBy: string | null;
  readonly resolvedAt: Date | null;
  readonly resolvedBy: string | null;
  readonly note: string | null;
}

function toAlert(row: Selectable<AlertsTable>): Alert {
  const date = (value: Date | string | null) => (value === null ? null : new Date(value));
  return {
    id: row.id,
    kind: row.kind,
    severity: row.severity,
    status: row.status,
    principalId: row.principal_id,
    subject: row.subject,
    summary: row.summary,
    detail: row.detail,
    occurrences: row.occurrences,
    raisedAt: new Date(row.raised_at),
    lastSeenAt: new Date(row.last_seen_at),
    acknowledgedAt: date(row.acknowledged_at),
    acknowledgedBy: row.acknowledged_by,
    resolvedAt: date(row.resolved_at),
    resolvedBy: row.resolved_by,
    note: row.note,
  };
}

/**
 * Stores a raised alert: a new row, or, when an unresolved alert with its dedupe key exists, one
 * more occurrence of it. Returns the alert and whether it is new.
 */
export async function raiseAlert(db: Executor, id: string, alert: RaisedAlert, now: Date): Promise<{ alert: Alert; created: boolean }> {
  const existing = await db
    .updateTable('alerts')
    .set({ occurrences: sql`occurrences + 1`, last_seen_at: now })
    .where('dedupe_key', '=', alert.dedupeKey)
    .where('status', '<>', 'resolved')
    .returningAll()
    .executeTakeFirst();
  if (existing) return { alert: toAlert(existing), created: false };
  const row = await db
    .insertInto('alerts')
    .values({
      id,
      kind: alert.kind,
      severity: alert.severity,
      status: 'open',
      principal_id: alert.principalId,
      subject: alert.subject,
      summary: alert.summary.slice(0, 1000),
      detail: JSON.stringify(alert.detail),
      dedupe_key: alert.dedupeKey.slice(0, 600),
      raised_at: now,
      last_seen_at: now,
      acknowledged_at: null,
      acknowledged_by: null,
      resolved_at: null,
      resolved_by: null,
      note: null,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
  return { alert: toAlert(row), created: true };
}

export interface AlertFilter {
  readonly status?: AlertStatus | 'unresolved' | undefined;
  readonly limit: number;
  /** Alerts raised before this one (its id), for paging. */
  readonly before?: string | undefined;
}

export async function listAlerts(db: Executor, filter: AlertFilter): Promise<Alert[]> {
  let query = db.selectFrom('alerts').selectAll().orderBy('raised_at', 'desc').orderBy('id', 'desc').limit(filter.limit);
  if (filter.status === 'unresolved') query = query.where('status', '<>', 'resolved');
  else if (filter.status) query = query.where('status', '=', filter.status);
  if (filter.before) {
    const before = filter.before;
    query = query.where((eb) =>
      eb(eb.refTuple('raised_at', 'id'), '<', eb.tuple(eb.selectFrom('alerts').select('raised_at').where('id', '=', before), eb.val(before))),
    );
  }
  return (await query.execute()).map(toAlert);
}

export async function getAlert(db: Executor, id: string, options: { forUpdate?: boolean } = {}): Promise<Alert | undefined> {
  let query = db.selectFrom('alerts').selectAll().where('id', '=', id);
  if (options.forUpdate) query = query.forUpdate();
  const row = await query.executeTakeFirst();
  return row ? toAlert(row) : undefined;
}

export async function updateAlertStatus(
  db: Executor,
  id: string,
  change: { readonly status: 'acknowledged' | 'resolved'; readonly by: string; readonly at: Date; readonly note: string | null },
): Promise<Alert> {
  const row = await db
    .updateTable('alerts')
    .set(
      change.status === 'acknowledged'
        ? { status: 'acknowledged', acknowledged_at: change.at, acknowledged_by: change.by, ...(change.note !== null ? { note: change.note } : {}) }
        : { status: 'resolved', resolved_at: change.at, resolved_by: change.by, ...(change.note !== null ? { note: change.note } : {}) },
    )
    .where('id', '=', id)
    .returningAll()
    .executeTakeFirstOrThrow();
  return toAlert(row);
}

/** The detectors' position in the audit chain, locked until the transaction ends (one reader at a time across replicas). */
export async function lockAlertCursor(db: Executor): Promise<number> {
  const row = await db.selectFrom('alert_cursor').select('seq').where('id', '=', 1).forUpdate().executeTakeFirstOrThrow();
  return Number(row.seq);
}

export async function moveAlertCursor(db: Executor, seq: number): Promise<void> {
  await db.updateTable('alert_cursor').set({ seq }).where('id', '=', 1).execute();
}

/** Adds one to a decaying counter (time constant `tauMs`) and returns its new value. */
export async function bumpAlertCounter(db: Executor, key: string, atMs: number, tauMs: number): Promise<number> {
  const row = await db.selectFrom('alert_counters').select(['value', 'at_ms']).where('key', '=', key).forUpdate().executeTakeFirst();
  const value = (row ? row.value * Math.exp(-Math.max(0, atMs - Number(row.at_ms)) / tauMs) : 0) + 1;
  await db
    .insertInto('alert_counters')
    .values({ key: key.slice(0, 600), value, at_ms: atMs })
    .onConflict((oc) => oc.column('key').doUpdateSet({ value, at_ms: atMs }))
    .execute();
  return value;
}

/** Grants still revoking (or active) more than `overdueMs` after they expired: the revocation-overdue sweep. */
export async function listOverdueRevocations(
  db: Executor,
  now: Date,
  overdueMs: number,
  limit = 100,
): Promise<{ id: string; principalId: string; entitlement: string; overdueMs: number }[]> {
  const cutoff = new Date(now.getTime() - overdueMs);
  const rows = await db
    .selectFrom('grants')
    .select(['id', 'principal_id', 'target', 'entitlement', 'expires_at'])
    .where('status', 'in', ['active', 'revoking'])
    .where('expires_at', '<', cutoff)
    .orderBy('expires_at')
    .limit(limit)
    .execute();
  return rows.map((r) => ({
    id: r.id,
    principalId: r.principal_id,
    entitlement: `${r.target}/${r.entitlement}`,
    overdueMs: now.getTime() - new Date(r.expires_at!).getTime(),
  }));
}
