import { randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readFileSync, readlinkSync, renameSync, rmSync, statSync, utimesSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { LapseError } from '../domain/errors.js';

export interface DataDirLockOptions {
  /** How often the holder renews its lease (the lock file's mtime); default 5 s. */
  readonly heartbeatMs?: number;
  /** A lease not renewed for this long is a dead holder's; default 20 s. */
  readonly staleAfterMs?: number;
  /** How long to wait for the fresh lease of a holder we cannot see to go stale; default staleAfterMs + heartbeatMs. */
  readonly waitMs?: number;
}

interface Holder {
  readonly pid: number;
  readonly host: string;
  /** The kernel's start time of the process (Linux, /proc/<pid>/stat): tells a reused PID apart. */
  readonly start: string | null;
  readonly boot: string | null;
  readonly pidNamespace: string | null;
  readonly token: string | null;
}

type Verdict = { readonly kind: 'dead' } | { readonly kind: 'alive' } | { readonly kind: 'leased'; readonly ageMs: number };

/** Lock files held by this process: a second open of one data directory here is refused too. */
const held = new Set<string>();

/**
 * PGlite is one process's database: nothing stops two processes from opening the same files, and
 * two writers would corrupt them. This lock file makes the second `lapse` refuse clearly.
 *
 * NB. Node has no flock(2), so the lock is a file naming its holder (PID, the process's start time,
 * host, boot and PID namespace) whose mtime the holder renews every few seconds (a lease). A
 * holder whose process table we share is judged exactly: gone, or its PID now someone else's (our
 * own PID after a container restart, or an unrelated process with another start time), means the
 * lock is stale. A holder we cannot see (another host, another PID namespace) is alive while its
 * lease is fresh; we wait for it to go stale before taking over. docs/adr/0006-data-dir-lock.md.
 */
export async function lockDataDir(dataDir: string, options: DataDirLockOptions = {}): Promise<() => void> {
  const heartbeatMs = options.heartbeatMs ?? 5_000;
  const staleAfterMs = options.staleAfterMs ?? 20_000;
  const deadline = Date.now() + (options.waitMs ?? staleAfterMs + heartbeatMs);
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const path = resolve(join(dataDir, 'lapse.lock'));
  if (held.has(path)) throw inUse(dataDir, path, process.pid);
  const token = randomBytes(12).toString('hex');
  const mine = JSON.stringify({
    pid: process.pid,
    host: hostname(),
    start: SELF.start,
    boot: SELF.boot,
    pidNamespace: SELF.pidNamespace,
    token,
    since: new Date().toISOString(),
  });
  for (;;) {
    try {
      const fd = openSync(path, 'wx', 0o600);
      try {
        writeSync(fd, mine);
      } finally {
        closeSync(fd);
      }
      held.add(path);
      return holdLease(path, token, heartbeatMs);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const seen = readLock(path);
    if (seen === null) continue; // released between our attempt and the read
    const verdict = judge(seen.holder, seen.ageMs, staleAfterMs);
    if (verdict.kind === 'dead') {
      takeOver(path, seen.text);
      continue;
    }
    const holder = seen.holder;
    if (verdict.kind === 'alive' || !holder) throw inUse(dataDir, path, holder?.pid ?? 0);
    if (Date.now() >= deadline) {
      throw new LapseError(
        'storage_locked',
        `the data directory ${dataDir} is locked by process ${holder.pid} on host ${holder.host}, whose lease was renewed ${Math.round(verdict.ageMs / 1000)} s ago`,
        {
          where: path,
          hint: `Only one Lapse process may use an embedded database. If that process is gone, its lease runs out ${Math.round(staleAfterMs / 1000)} s after its last renewal and the next start takes over; to share data between replicas, set DATABASE_URL to a PostgreSQL server.`,
        },
      );
    }
    await sleep(Math.min(250, Math.max(10, deadline - Date.now())));
  }
}

function holdLease(path: string, token: string, heartbeatMs: number): () => void {
  const ours = () => readLock(path)?.holder?.token === token;
  const timer = setInterval(() => {
    try {
      if (ours()) {
        const now = new Date();
        utimesSync(path, now, now);
      }
    } catch {
      // A failed renewal (disk full, file gone) is retried at the next beat.
    }
  }, heartbeatMs);
  timer.unref();
  return () => {
    clearInterval(timer);
    held.delete(path);
    if (ours()) rmSync(path, { force: true });
  };
}

function judge(holder: Holder | null, ageMs: number, staleAfterMs: number): Verdict {
  const lease: Verdict = ageMs > staleAfterMs ? { kind: 'dead' } : { kind: 'leased', ageMs };
  // Unreadable (a holder that died between creating and writing it): only its age can tell.
  if (!holder) return lease;
  if (holder.host !== hostname()) return lease;
  if (holder.boot && SELF.boot && holder.boot !== SELF.boot) return { kind: 'dead' };
  // Another PID namespace (another container on this host sharing the volume): its PIDs are not ours to look up.
  if (holder.pidNamespace && SELF.pidNamespace && holder.pidNamespace !== SELF.pidNamespace) return lease;
  // Not held in this process (checked first), so a lock naming our PID is a previous life's.
  if (holder.pid === process.pid) return { kind: 'dead' };
  if (!processExists(holder.pid)) return { kind: 'dead' };
  const start = startTimeOf(holder.pid);
  if (holder.start && start) return start === holder.start ? { kind: 'alive' } : { kind: 'dead' };
  // No start times to compare (not Linux, or a lock from an older Lapse): a live PID renewing its lease is the holder.
  return lease.kind === 'dead' ? lease : { kind: 'alive' };
}

/**
 * Removes a stale lock, unless someone replaced it since we read it: the file is moved aside
 * atomically and put back if it is not the one judged.
 */
function takeOver(path: string, judged: string): void {
  const aside = `${path}.stale-${randomBytes(6).toString('hex')}`;
  try {
    renameSync(path, aside);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw error;
  }
  if (readFileSync(aside, 'utf8') === judged) rmSync(aside, { force: true });
  else renameSync(aside, path);
}

function readLock(path: string): { text: string; holder: Holder | null; ageMs: number } | null {
  let text: string;
  let ageMs: number;
  try {
    ageMs = Date.now() - statSync(path).mtimeMs;
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
  return { text, holder: parseHolder(text), ageMs };
}

function parseHolder(text: string): Holder | null {
  try {
    const parsed = JSON.parse(text) as Record<string, unknown>;
    if (typeof parsed.pid !== 'number' || typeof parsed.host !== 'string') return null;
    const optional = (value: unknown) => (typeof value === 'string' && value !== '' ? value : null);
    return {
      pid: parsed.pid,
      host: parsed.host,
      start: optional(parsed.start),
      boot: optional(parsed.boot),
      pidNamespace: optional(parsed.pidNamespace),
      token: optional(parsed.token),
    };
  } catch {
    return null;
  }
}

function inUse(dataDir: string, path: string, pid: number): LapseError {
  return new LapseError('storage_locked', `the data directory ${dataDir} is in use by process ${pid}`, {
    where: path,
    hint: 'Only one Lapse process may use an embedded database. Stop the other process, use another --data-dir, or set DATABASE_URL to share a PostgreSQL server between replicas.',
  });
}

function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Field 22 of /proc/<pid>/stat (after the command name, which may hold spaces and parentheses). */
function startTimeOf(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

function readOrNull(read: () => string): string | null {
  try {
    return read().trim() || null;
  } catch {
    return null;
  }
}

/** This process as a lock names it; nulls where the platform cannot tell. */
const SELF = {
  start: startTimeOf(process.pid),
  boot: readOrNull(() => readFileSync('/proc/sys/kernel/random/boot_id', 'utf8')),
  pidNamespace: readOrNull(() => readlinkSync('/proc/self/ns/pid')),
};
