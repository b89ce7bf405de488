import { createHash } from 'node:crypto';
import { sql, type Kysely } from 'kysely';
import { newId } from '../domain/ids.js';
import type { Database } from '../store/index.js';
import { canonicalJson } from '../domain/canonical-json.js';

/** What a caller records; the chain adds seq, id and the database time. */
export interface AuditEntry {
  readonly action: string;
  readonly actor: string;
  readonly subject?: string | undefined;
  readonly data?: Record<string, unknown> | undefined;
}

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

export const GENESIS_HASH = '0'.repeat(64);
/** Bounded so one bad caller cannot bloat the log: an event is a record, not a document. */
export const MAX_EVENT_BYTES = 64 * 1024;
const SECRET_KEY = /password|passwd|secret|token|credential|private_?key/i;

export function chainHash(prevHash: string, payload: string): string {
  return createHash('sha256').update(prevHash).update('\n').update(payload).digest('hex');
}

/**
 * NB. Audit data carries ids and decisions, never credentials. A key that looks like a secret is a
 * programming error, refused loudly rather than written into a log that is kept forever.
 */
function refuseSecrets(value: unknown, path: string): void {
  if (value === null || typeof value !== 'object') return;
  for (const [key, inner] of Object.entries(value)) {
    if (SECRET_KEY.test(key)) throw new Error(`audit data must not contain secrets: key "${path}.${key}"`);
    refuseSecrets(inner, `${path}.${key}`);
  }
}

/**
 * Appends events to the hash chain inside the caller's transaction, so they commit with the state
 * change they describe or not at all. Locking the head row serialises appenders across processes.
 */
export async function appendAuditEvents(tx: Kysely<Database>, entries: readonly AuditEntry[]): Promise<{ seq: number; id: string; hash: string }[]> {
  if (entries.length === 0) return [];
  const { rows } = await sql<{ seq: string; hash: string; now: Date }>`SELECT seq, hash, now() AS now FROM audit_head WHERE id = 1 FOR UPDATE`.execute(tx);
  const head = rows[0];
  if (!head) throw new Error('audit_head row is missing: the database was not migrated or was tampered with');
  let seq = Number(head.seq);
  let prev = head.hash;
  const at = new Date(head.now).toISOString();
  const records = entries.map((entry) => {
    refuseSecrets(entry.data, 'data');
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
    if (Buffer.byteLength(payload) > MAX_EVENT_BYTES) throw new Error(`audit event ${entry.action} is larger than ${MAX_EVENT_BYTES} bytes`);
    const hash = chainHash(prev, payload);
    const record = { seq, id: event.id, payload, prev_hash: prev, hash };
    prev = hash;
    return record;
  });
  // One round trip for the rows and the new head: the head lock is held until commit, so every
  // statement saved here is time other writers do not wait.
  await sql`
    WITH inserted AS (
      INSERT INTO audit_events (seq, id, payload, prev_hash, hash)
      SELECT * FROM unnest(${records.map((r) => r.seq)}::bigint[], ${records.map((r) => r.id)}::text[], ${records.map((r) => r.payload)}::text[],
                           ${records.map((r) => r.prev_hash)}::text[], ${records.map((r) => r.hash)}::text[])
      RETURNING 1)
    UPDATE audit_head SET seq = ${seq}, hash = ${prev} WHERE id = 1`.execute(tx);
  return records.map((r) => ({ seq: r.seq, id: r.id, hash: r.hash }));
}

export async function appendAuditEvent(tx: Kysely<Database>, entry: AuditEntry): Promise<{ seq: number; id: string; hash: string }> {
  const [appended] = await appendAuditEvents(tx, [entry]);
  return appended!;
}
