import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, stat, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import sshpk from 'sshpk';
import { LapseError } from '../../domain/errors.js';
import { encodeKrl } from './krl.js';

/**
 * What a CA can't learn from sshd: which certificates it issued. Kept as JSON lines next to the KRL
 * (`<krlPath>.issued.jsonl`); the KRL is always rebuilt from it, so the ledger is the one source of
 * truth and the KRL only ever lists revoked certificates that could still be valid somewhere.
 *
 * Every change takes the ledger lock (one writer per file in this process, a lock file for other
 * processes on the same file system), writes the ledger, then the KRL, each to a temporary file
 * renamed into place:
 * sshd never reads a half-written KRL and a crash leaves the old or the new file, never a mix.
 */
export interface IssuedCertificate {
  /** Decimal uint64. */
  readonly serial: string;
  readonly grantId: string;
  readonly principalId: string;
  readonly entitlement: string;
  readonly principals: readonly string[];
  readonly keyId: string;
  /** ISO time; after it sshd refuses the certificate on its own. */
  readonly validBefore: string;
  /** The CA public key line that signed it (the KRL section it belongs to after a CA change). */
  readonly ca: string;
  readonly revokedAt: string | null;
}

/**
 * Revoked entries stay in the KRL this long after their certificates expired, for servers whose
 * clock runs behind Lapse's; then they leave the ledger and the KRL.
 */
export const RETENTION_MS = 24 * 60 * 60 * 1000;
const LOCK_STALE_MS = 30_000;
const LOCK_RETRY_MS = 15;
const MAX_LEDGER_BYTES = 64 * 1024 * 1024;

export class Ledger {
  readonly path: string;
  private readonly lockPath: string;

  constructor(readonly krlPath: string) {
    this.path = `${krlPath}.issued.jsonl`;
    this.lockPath = `${krlPath}.lock`;
  }

  /** Entries as they are now (no lock: a reader sees the previous or the next complete file). */
  async read(): Promise<IssuedCertificate[]> {
    let text: string;
    try {
      const info = await stat(this.path);
      if (info.size > MAX_LEDGER_BYTES) throw this.failure(`is larger than ${MAX_LEDGER_BYTES / 1024 / 1024} MiB`);
      text = await readFile(this.path, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      if (error instanceof LapseError) throw error;
      throw this.failure(`cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
    }
    return text
      .split('\n')
      .filter((line) => line !== '')
      .map((line, i) => {
        try {
          const entry = JSON.parse(line) as IssuedCertificate;
          if (typeof entry.serial !== 'string' || typeof entry.grantId !== 'string' || typeof entry.ca !== 'string') throw new Error('fields');
          return entry;
        } catch {
          // NB. Never skip a bad line: it may hold a revocation, and dropping it would un-revoke.
          throw this.failure(`line ${i + 1} is not a certificate record`);
        }
      });
  }

  /**
   * Applies `change` to the current entries under the lock, drops entries past retention, and
   * writes the ledger and the KRL. Always writes, so a repeated revoke repairs a KRL a crash left
   * behind its ledger. `change` must throw before it mutates anything, if it throws.
   *
   * Changes that arrive while a write is in progress are applied together in the next write (one
   * read, one ledger and one KRL write for the lot): a burst of revokes costs a few writes, not
   * one per certificate.
   */
  update<T>(signal: AbortSignal, change: (entries: IssuedCertificate[]) => T): Promise<T> {
    signal.throwIfAborted();
    return new Promise<T>((resolve, reject) => {
      const queue = queues.get(this.lockPath) ?? [];
      queue.push({ signal, change, resolve: resolve as (value: unknown) => void, reject });
      if (!queues.has(this.lockPath)) {
        queues.set(this.lockPath, queue);
        void this.drain(queue);
      }
    });
  }

  private async drain(queue: PendingChange[]): Promise<void> {
    try {
      while (queue.length > 0) {
        const batch = queue.splice(0);
        try {
          await this.writeBatch(batch);
        } catch (error) {
          for (const item of batch) item.reject(error);
        }
      }
    } finally {
      queues.delete(this.lockPath);
    }
  }

  private async writeBatch(batch: PendingChange[]): Promise<void> {
    await this.acquireFile(() => batch.every((item) => item.signal.aborted));
    try {
      const now = new Date();
      const entries = (await this.read()).filter((e) => Date.parse(e.validBefore) + RETENTION_MS > now.getTime());
      const applied: { item: PendingChange; result: unknown }[] = [];
      for (const item of batch) {
        if (item.signal.aborted) {
          item.reject(item.signal.reason);
          continue;
        }
        try {
          applied.push({ item, result: item.change(entries) });
        } catch (error) {
          item.reject(error);
        }
      }
      if (applied.length === 0) return;
      try {
        await this.replace(this.path, Buffer.from(entries.map((e) => `${JSON.stringify(e)}\n`).join('')), 0o600);
        await this.replace(this.krlPath, krlOf(entries, now), 0o644);
      } catch (error) {
        for (const { item } of applied) item.reject(error);
        return;
      }
      for (const { item, result } of applied) item.resolve(result);
    } finally {
      await unlink(this.lockPath).catch(() => undefined);
    }
  }

  private async replace(path: string, content: Buffer, mode: number): Promise<void> {
    const temporary = `${path}.${randomBytes(6).toString('hex')}.tmp`;
    try {
      await mkdir(dirname(path), { recursive: true, mode: 0o755 });
      const file = await open(temporary, 'wx', mode);
      try {
        await file.writeFile(content);
        await file.sync();
      } finally {
        await file.close();
      }
      await rename(temporary, path);
    } catch (error) {
      await unlink(temporary).catch(() => undefined);
      throw new LapseError('connector_failed', `cannot write ${path} (${(error as NodeJS.ErrnoException).code ?? 'error'})`, {
        where: path,
        hint: 'Lapse needs write access to the directory of krlPath (it writes a temporary file there and renames it).',
      });
    }
  }

  /**
   * The cross-process half of the lock: an exclusive-create file, taken over when stale. Waits
   * until it is free or every caller in the batch has given up.
   */
  private async acquireFile(abandoned: () => boolean): Promise<void> {
    for (;;) {
      try {
        await mkdir(dirname(this.lockPath), { recursive: true, mode: 0o755 });
        const file = await open(this.lockPath, 'wx', 0o600);
        await file.writeFile(`${process.pid}\n`);
        await file.close();
        return;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') {
          throw new LapseError('connector_failed', `cannot create the lock file ${this.lockPath} (${(error as NodeJS.ErrnoException).code ?? 'error'})`, {
            where: this.lockPath,
            hint: 'Lapse needs write access to the directory of krlPath.',
          });
        }
      }
      // NB. A holder that died leaves its file behind; updates take milliseconds, so a lock older
      // than LOCK_STALE_MS is abandoned. Two waiters taking over the same stale lock within the
      // same microseconds could both write, and the later write would drop the earlier one's
      // changes; that takes a crash and such a race together. A revocation lost that way shows up
      // in reconciliation as standing access (listAccess reports the certificate again).
      const age = await stat(this.lockPath).then(
        (s) => Date.now() - s.mtimeMs,
        () => 0,
      );
      if (age > LOCK_STALE_MS) {
        await unlink(this.lockPath).catch(() => undefined);
        continue;
      }
      if (abandoned())
        throw new LapseError('connector_timeout', `the ssh ledger lock ${this.lockPath} stayed taken until every caller's deadline passed`, {
          where: this.lockPath,
          hint: `If no Lapse process is writing, delete ${this.lockPath}.`,
        });
      await new Promise((resolve) => setTimeout(resolve, LOCK_RETRY_MS));
    }
  }

  private failure(what: string): LapseError {
    return new LapseError('connector_failed', `the ssh certificate ledger ${this.path} ${what}`, {
      where: this.path,
      hint: 'Restore it from a backup or fix the line; Lapse will not rebuild the KRL without it, so revocations are not lost.',
    });
  }
}

/** The KRL for a ledger: every revoked entry still inside retention, grouped by CA key. */
export function krlOf(entries: readonly IssuedCertificate[], now: Date): Buffer {
  const byCa = new Map<string, bigint[]>();
  for (const entry of entries) {
    if (entry.revokedAt === null) continue;
    const serials = byCa.get(entry.ca) ?? [];
    serials.push(BigInt(entry.serial));
    byCa.set(entry.ca, serials);
  }
  const revoked = [...byCa].map(([ca, serials]) => ({ caKey: sshpk.parseKey(ca, 'ssh').toBuffer('rfc4253'), serials }));
  return encodeKrl(revoked, BigInt(now.getTime()), now);
}

interface PendingChange {
  readonly signal: AbortSignal;
  readonly change: (entries: IssuedCertificate[]) => unknown;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: unknown) => void;
}

/** Changes waiting for the next write, per lock file; present while a drain is running. */
const queues = new Map<string, PendingChange[]>();
