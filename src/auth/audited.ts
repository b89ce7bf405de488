import { sql } from 'kysely';
import { appendAuditEvents, type AuditEntry } from '../audit/index.js';
import type { Executor } from '../store/index.js';

/**
 * One sign-in state change and its audit events in one transaction, with the database's now (the
 * same rule the engine's use-cases follow: the audit trail commits with the change or not at all).
 */
export async function auditedChange<T>(db: Executor, work: (tx: Executor, now: Date, audit: (entry: AuditEntry) => void) => Promise<T>): Promise<T> {
  return db.transaction().execute(async (tx) => {
    const { rows } = await sql<{ now: Date }>`SELECT now() AS now`.execute(tx);
    const entries: AuditEntry[] = [];
    const value = await work(tx, new Date(rows[0]!.now), (entry) => entries.push(entry));
    await appendAuditEvents(tx, entries);
    return value;
  });
}
