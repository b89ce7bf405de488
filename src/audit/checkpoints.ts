import { sign, verify, type KeyObject } from 'node:crypto';
import { sql, type Kysely } from 'kysely';
import type { Database } from '../store/index.js';
import type { SigningKey } from './signing-key.js';

/** The signed statement: "the chain had this hash at this seq". Versioned so it can evolve. */
export function checkpointMessage(seq: number, hash: string): Buffer {
  return Buffer.from(`lapse-audit-checkpoint:v1\n${seq}\n${hash}`);
}

export function verifyCheckpointSignature(publicKey: KeyObject, seq: number, hash: string, signature: string): boolean {
  try {
    return verify(null, checkpointMessage(seq, hash), publicKey, Buffer.from(signature, 'base64'));
  } catch {
    return false;
  }
}

/** Signs the current head unless it was signed already. Returns the checkpointed seq, or null. */
export async function writeCheckpoint(db: Kysely<Database>, key: SigningKey): Promise<number | null> {
  return db.transaction().execute(async (tx) => {
    // Lock the head so the checkpoint names a committed, consistent (seq, hash).
    const { rows } = await sql<{ seq: string; hash: string }>`SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE`.execute(tx);
    const seq = Number(rows[0]!.seq);
    if (seq === 0) return null;
    const hash = rows[0]!.hash;
    const existing = await tx.selectFrom('audit_checkpoints').select('seq').where('seq', '=', String(seq)).executeTakeFirst();
    if (existing) return null;
    const signature = sign(null, checkpointMessage(seq, hash), key.privateKey).toString('base64');
    await tx.insertInto('audit_checkpoints').values({ seq, hash, created_at: sql<Date>`now()`, key_id: key.keyId, signature }).execute();
    return seq;
  });
}

/**
 * Writes a checkpoint after `every` new events or every `intervalMs`, whichever comes first, from
 * one timer; stop() clears it and writes a last checkpoint.
 */
export class AuditCheckpointer {
  private timer: NodeJS.Timeout | null = null;
  private lastAt = Date.now();
  private busy = false;

  constructor(
    private readonly db: Kysely<Database>,
    private readonly key: SigningKey,
    private readonly options: { every: number; intervalMs: number; onError: (error: unknown) => void },
  ) {}

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.tick(), Math.min(1_000, this.options.intervalMs));
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await writeCheckpoint(this.db, this.key).catch(this.options.onError);
  }

  private async tick(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      const { rows } = await sql<{ head: string; last: string | null }>`
        SELECT (SELECT seq FROM audit_head WHERE id = 1) AS head, (SELECT max(seq) FROM audit_checkpoints) AS last`.execute(this.db);
      const pending = Number(rows[0]!.head) - Number(rows[0]!.last ?? 0);
      const due = pending >= this.options.every || (pending > 0 && Date.now() - this.lastAt >= this.options.intervalMs);
      if (due) {
        await writeCheckpoint(this.db, this.key);
        this.lastAt = Date.now();
      }
    } catch (error) {
      this.options.onError(error);
    } finally {
      this.busy = false;
    }
  }
}
