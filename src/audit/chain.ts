import { hash } from 'node:crypto';
import { canonicalJson } from '../domain/canonical-json.js';
import { LapseError } from '../domain/errors.js';
import { newId } from '../domain/ids.js';
import {
  insertAuditRows,
  lockAuditHead,
  runUnitOfWork,
  type AuditRecord,
  type AuditRow,
  type Executor,
  type StoredChange,
  type UnitOfWorkSteps,
} from '../store/index.js';

/** What a caller records (the store's AuditRecord); the chain adds seq, id and the database time. */
export type AuditEntry = AuditRecord;

/** The stored event, exactly as hashed (field names are part of the format: version 1). */
export interface AuditEvent {
  readonly v: 1;
  readonly seq: number;
  readonly id: string;
  readonly at: string;
  readonly action: string;
  readonly actor: string;
  readonly subject?: string;
  readonly data?: Record<string, unknown>;
}

export interface AppendedEvent {
  readonly seq: number;
  readonly id: string;
  readonly hash: string;
}

export const GENESIS_HASH = '0'.repeat(64);
/** Bounded so one bad caller cannot bloat the log: an event is a record, not a document. */
export const MAX_EVENT_BYTES = 64 * 1024;
const SECRET_KEY = /password|passwd|secret|token|credential|private_?key/i;
/** `tokenId`, `credential_ids`: a reference to a secret is not the secret. */
const REFERENCE_KEY = /(?:Ids?|_ids?)$/;

export function chainHash(prevHash: string, payload: string): string {
  // NB. crypto.hash (one call, no Hash object) is twice as fast as createHash().update().digest(),
  // and verification is bound by this line.
  return hash('sha256', `${prevHash}\n${payload}`, 'hex');
}

/**
 * NB. Audit data carries ids and decisions, never credentials. A key that looks like a secret is a
 * programming error, refused loudly rather than written into a log that is kept forever.
 */
function refuseSecrets(value: unknown, path: string): void {
  if (value === null || typeof value !== 'object') return;
  for (const [key, inner] of Object.entries(value)) {
    if (SECRET_KEY.test(key) && !REFERENCE_KEY.test(key)) {
      throw new Error(`audit data must not contain secrets: key "${path}.${key}" (record the id of a secret, never its value)`);
    }
    refuseSecrets(inner, `${path}.${key}`);
  }
}

/**
 * Appends events to the hash chain inside the caller's transaction, so they commit with the state
 * change they describe or not at all. Locking the head row serialises appenders across processes
 * (replicas sharing one PostgreSQL extend one chain); the lock is held until the caller commits.
 */
export async function appendAuditEvents(tx: Executor, entries: readonly AuditEntry[]): Promise<AppendedEvent[]> {
  if (entries.length === 0) return [];
  // Checked before the lock: a refused event must not make other writers wait.
  for (const entry of entries) refuseSecrets(entry.data, 'data');
  const head = await lockAuditHead(tx);
  let seq = head.seq;
  let prev = head.hash;
  // now() is the transaction's start, the same instant the caller's state change records.
  const at = head.now.toISOString();
  const records: AuditRow[] = entries.map((entry) => {
    seq += 1;
    const event: AuditEvent = {
      v: 1,
      seq,
      id: newId('event'),
      at,
      action: entry.action,
      actor: entry.actor,
      ...(entry.subject !== undefined ? { subject: entry.subject } : {}),
      ...(entry.data !== undefined ? { data: entry.data } : {}),
    };
    const payload = canonicalJson(event);
    if (Buffer.byteLength(payload) > MAX_EVENT_BYTES) {
      throw new LapseError(
        'validation_failed',
        `the audit event ${entry.action} is ${Buffer.byteLength(payload)} bytes, more than the ${MAX_EVENT_BYTES} allowed`,
        {
          where: entry.subject ?? entry.action,
          hint: 'Shorten the free text (reason, comment) or record ids instead of whole documents.',
        },
      );
    }
    const record = { seq, id: event.id, payload, prev_hash: prev, hash: chainHash(prev, payload) };
    prev = record.hash;
    return record;
  });
  await insertAuditRows(tx, records, { seq, hash: prev });
  return records.map((r) => ({ seq: r.seq, id: r.id, hash: r.hash }));
}

export async function appendAuditEvent(tx: Executor, entry: AuditEntry): Promise<AppendedEvent> {
  const [appended] = await appendAuditEvents(tx, [entry]);
  return appended!;
}

/** The store's one unit of work (runUnitOfWork) with this chain as its audit log. */
export function auditedTransaction<T>(
  db: Executor,
  work: (change: StoredChange) => Promise<T>,
  steps?: UnitOfWorkSteps<T>,
): Promise<{ value: T; records: readonly AuditEntry[] }> {
  return runUnitOfWork(db, appendAuditEvents, work, steps);
}
