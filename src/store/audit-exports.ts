import { sql } from 'kysely';
import type { Executor } from './executor.js';

/**
 * Durable cursors of the audit exports (migration 0018): where each sink (events) and each witness
 * (checkpoints) has got to, who holds it, and its last error. Only storage lives here; what is
 * exported and how is src/audit's.
 */

export interface ExportPosition {
  /** The last event (sink) or checkpoint (witness) delivered; 0 before the first. */
  readonly seq: number;
  readonly hash: string;
}

export interface ExportCursor extends ExportPosition {
  readonly name: string;
  readonly exportedAt: Date | null;
  readonly exportedTotal: number;
  readonly failures: number;
  readonly lastError: string | null;
  readonly lastErrorAt: Date | null;
}

/**
 * Takes (or renews) the lease on an export's cursor, creating it at the start of the chain the
 * first time; returns where the export stands, or null while another process holds it.
 */
export async function claimExportCursor(db: Executor, name: string, owner: string, leaseMs: number): Promise<ExportPosition | null> {
  await db
    .insertInto('audit_export_cursors')
    .values({ name, seq: 0, hash: '0'.repeat(64), exported_total: 0, failures: 0 })
    .onConflict((c) => c.column('name').doNothing())
    .execute();
  const { rows } = await sql<{ seq: string; hash: string }>`
    UPDATE audit_export_cursors SET lease_owner = ${owner}, lease_until = now() + make_interval(secs => ${leaseMs / 1000})
    WHERE name = ${name} AND (lease_owner IS NULL OR lease_owner = ${owner} OR lease_until < now())
    RETURNING seq, hash`.execute(db);
  const row = rows[0];
  return row ? { seq: Number(row.seq), hash: row.hash } : null;
}

/**
 * Moves the cursor from `from` to `to` after a delivery, if this owner still holds it and nobody
 * moved it meanwhile; says whether it did (false: the lease was lost, the next claim re-reads).
 */
export async function advanceExportCursor(db: Executor, name: string, owner: string, from: number, to: ExportPosition, count: number): Promise<boolean> {
  const result = await db
    .updateTable('audit_export_cursors')
    .set({
      seq: to.seq,
      hash: to.hash,
      exported_at: sql<Date>`now()`,
      exported_total: sql<string>`exported_total + ${count}`,
      failures: 0,
    })
    .where('name', '=', name)
    .where('lease_owner', '=', owner)
    .where('seq', '=', String(from))
    .executeTakeFirst();
  return result.numUpdatedRows === 1n;
}

/** Records a failed delivery (the cursor stays where it was; the export retries with backoff). */
export async function noteExportError(db: Executor, name: string, message: string): Promise<void> {
  await db
    .updateTable('audit_export_cursors')
    .set({ failures: sql<number>`failures + 1`, last_error: message.slice(0, 2000), last_error_at: sql<Date>`now()` })
    .where('name', '=', name)
    .execute();
}

/** Gives the lease up (at shutdown), so another replica may take the export over at once. */
export async function releaseExportCursor(db: Executor, name: string, owner: string): Promise<void> {
  await db
    .updateTable('audit_export_cursors')
    .set({ lease_owner: null, lease_until: null })
    .where('name', '=', name)
    .where('lease_owner', '=', owner)
    .execute();
}

/** Every export cursor, by name. */
export async function listExportCursors(db: Executor): Promise<ExportCursor[]> {
  const rows = await db.selectFrom('audit_export_cursors').selectAll().orderBy('name').execute();
  return rows.map((row) => ({
    name: row.name,
    seq: Number(row.seq),
    hash: row.hash,
    exportedAt: row.exported_at ? new Date(row.exported_at) : null,
    exportedTotal: Number(row.exported_total),
    failures: row.failures,
    lastError: row.last_error,
    lastErrorAt: row.last_error_at ? new Date(row.last_error_at) : null,
  }));
}

/** The checkpoints after `afterSeq`, oldest first, at most `limit`. */
export async function listAuditCheckpointsAfter(db: Executor, afterSeq: number, limit: number) {
  const rows = await db.selectFrom('audit_checkpoints').selectAll().where('seq', '>', String(afterSeq)).orderBy('seq').limit(limit).execute();
  return rows.map((c) => ({ ...c, seq: Number(c.seq), created_at: new Date(c.created_at) }));
}

/** The `at` of the event at `seq` (the oldest one an export has not delivered), or null. */
export async function auditEventTime(db: Executor, seq: number): Promise<Date | null> {
  const { rows } = await sql<{ at: string | null }>`SELECT payload::jsonb ->> 'at' AS at FROM audit_events WHERE seq = ${seq}`.execute(db);
  const at = rows[0]?.at;
  return at ? new Date(at) : null;
}
