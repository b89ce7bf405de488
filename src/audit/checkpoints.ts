import { sign, verify, type KeyObject } from 'node:crypto';
import { auditHeadAndSigned, insertAuditCheckpoint, uncheckpointedAuditEvents, type Executor } from '../store/index.js';
import type { SigningKey } from './signing-key.js';

/** The signed statement: "the chain had this hash at this seq". Versioned so it can evolve. */
export function checkpointMessage(seq: number, hash: string): Buffer {
  return Buffer.from(`lapse-audit-checkpoint:v1\n${seq}\n${hash}`);
}

export function verifyCheckpointSignature(publicKey: KeyObject, seq: number, hash: string, signature: string): boolean {
  try {
    return verify(null, checkpointMessage(seq, hash), publicKey, Buffer.from(signature, 'base64'));
  } catch {
    // A key of the wrong type or a malformed signature is simply not a valid signature.
    return false;
  }
}

/** Signs the current head unless it was signed already. Returns the checkpointed seq, or null. */
export async function writeCheckpoint(db: Executor, key: SigningKey): Promise<number | null> {
  // NB. No lock: the head row always holds a committed, matching (seq, hash) pair, and locking it
  // would stall every appender for the length of this commit.
  const head = await auditHeadAndSigned(db);
  if (!head) throw new Error('audit_head row is missing: the database was not migrated, or was tampered with');
  const seq = head.seq;
  if (seq === 0 || seq <= head.signed) return null;
  const signature = sign(null, checkpointMessage(seq, head.hash), key.privateKey).toString('base64');
  // Replicas race to sign the same head; the first one wins and the others change nothing.
  const inserted = await insertAuditCheckpoint(db, { seq, hash: head.hash, keyId: key.keyId, signature });
  return inserted ? seq : null;
}

export interface CheckpointerOptions {
  /** Sign after this many new events… */
  readonly every: number;
  /** …or once this long has passed with at least one new event. */
  readonly intervalMs: number;
  readonly onError: (error: unknown) => void;
  /** Told of each checkpoint this process signs (the exporter publishes it to witnesses at once). */
  readonly onCheckpoint?: (seq: number) => void;
}

/**
 * Writes a checkpoint after `every` new events or every `intervalMs`, whichever comes first, from
 * one polling timer (events may be appended by other replicas, so the count is read from the
 * database, not counted here). stop() clears the timer, waits for a running tick and writes a
 * last checkpoint, so nothing of it outlives the process's store.
 */
export class AuditCheckpointer {
  private timer: NodeJS.Timeout | null = null;
  private lastAt = Date.now();
  private running: Promise<void> | null = null;

  constructor(
    private readonly db: Executor,
    private readonly key: SigningKey,
    private readonly options: CheckpointerOptions,
  ) {}

  start(): void {
    if (this.timer) return;
    this.lastAt = Date.now();
    this.timer = setInterval(() => this.tick(), Math.max(10, Math.min(1_000, this.options.intervalMs)));
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running;
    await writeCheckpoint(this.db, this.key).catch(this.options.onError);
  }

  private tick(): void {
    if (this.running) return;
    this.running = this.checkpointIfDue()
      .catch(this.options.onError)
      .finally(() => {
        this.running = null;
      });
  }

  private async checkpointIfDue(): Promise<void> {
    const pending = await uncheckpointedAuditEvents(this.db);
    if (pending >= this.options.every || (pending > 0 && Date.now() - this.lastAt >= this.options.intervalMs)) {
      const seq = await writeCheckpoint(this.db, this.key);
      this.lastAt = Date.now();
      if (seq !== null) this.options.onCheckpoint?.(seq);
    }
  }
}
