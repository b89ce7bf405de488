import { sql } from 'kysely';
import type { Executor, StoreTransaction } from './executor.js';

/** What a change records about itself; src/audit turns these into chained events. */
export interface AuditRecord {
  readonly action: string;
  readonly actor: string;
  readonly subject?: string | undefined;
  /** Ids, names, decisions and reasons. Never credentials (src/audit refuses keys that look like secrets). */
  readonly data?: Record<string, unknown> | undefined;
}

/** Appends audit records inside the given transaction (src/audit's appendAuditEvents). */
export type AuditAppender = (tx: Executor, records: readonly AuditRecord[]) => Promise<unknown>;

/** One state change in progress: its transaction, its one "now", and its audit records. */
export interface StoredChange {
  readonly tx: StoreTransaction;
  /** The database's clock at the start of this transaction: one "now" for the whole change. */
  readonly now: Date;
  /** Records an audit event in this transaction: it commits with the state change or not at all. */
  audit(record: AuditRecord): void;
}

export interface UnitOfWorkSteps<T> {
  /** Writes that must commit with the change, given what the work returned (before the audit append). */
  readonly afterWork?: (tx: StoreTransaction, value: T) => Promise<void>;
  /** Statements after the audit append, the last before commit (NOTIFY). */
  readonly beforeCommit?: (tx: StoreTransaction, records: readonly AuditRecord[]) => Promise<void>;
}

/**
 * The one unit of work: a transaction, the database's now read once, the work, and its audit
 * records appended in the same transaction, so the audit trail commits with the change or not at
 * all. Engine use-cases, sign-in and offline admin commands all go through here (src/audit binds
 * its appender: auditedTransaction; src/engine adds wake-ups: transact).
 * Returns the work's value and the records committed with it.
 */
export async function runUnitOfWork<T>(
  db: Executor,
  appendAudit: AuditAppender,
  work: (change: StoredChange) => Promise<T>,
  steps: UnitOfWorkSteps<T> = {},
): Promise<{ value: T; records: readonly AuditRecord[] }> {
  let records: AuditRecord[] = [];
  const value = await db.transaction().execute(async (tx) => {
    const { rows } = await sql<{ now: Date }>`SELECT now() AS now`.execute(tx);
    // Reset on every attempt: only the records of the transaction that commits are returned.
    records = [];
    const value = await work({ tx, now: new Date(rows[0]!.now), audit: (record) => void records.push(record) });
    if (steps.afterWork) await steps.afterWork(tx, value);
    // NB. Appended last, in one batch: the audit head row is locked from here to commit, and every
    // writer in every replica queues on it, so it is held for as short a time as possible.
    await appendAudit(tx, records);
    if (steps.beforeCommit) await steps.beforeCommit(tx, records);
    return value;
  });
  return { value, records };
}

/** Sends a PostgreSQL NOTIFY on `channel`, delivered when the transaction commits. */
export async function notifyOnCommit(tx: Executor, channel: string, payload = ''): Promise<void> {
  await sql`SELECT pg_notify(${channel}, ${payload})`.execute(tx);
}
