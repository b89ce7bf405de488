import { auditedTransaction, type AuditEntry } from '../audit/index.js';
import type { Executor } from '../store/index.js';

/**
 * One sign-in state change and its audit events in one transaction, with the database's now: the
 * store's unit of work (runUnitOfWork), the same one the engine's use-cases go through.
 */
export async function auditedChange<T>(db: Executor, work: (tx: Executor, now: Date, audit: (entry: AuditEntry) => void) => Promise<T>): Promise<T> {
  const { value } = await auditedTransaction(db, (change) => work(change.tx, change.now, change.audit));
  return value;
}
