import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { LapseError } from '../domain/errors.js';

/**
 * PGlite is one process's database: nothing stops two processes from opening the same files, and
 * two writers would corrupt them. This lock file makes the second `lapse` refuse clearly.
 * NB. A lock left by a process that died (kill -9) is taken over once its pid is gone.
 */
export function lockDataDir(dataDir: string): () => void {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const path = join(dataDir, 'lapse.lock');
  const mine = JSON.stringify({ pid: process.pid, host: hostname(), since: new Date().toISOString() });
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, 'wx', 0o600);
      writeSync(fd, mine);
      closeSync(fd);
      return () => rmSync(path, { force: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const holder = readHolder(path);
      if (holder && holder.host === hostname() && isAlive(holder.pid)) {
        throw new LapseError('storage_locked', `the data directory ${dataDir} is in use by process ${holder.pid}`, {
          where: path,
          hint: 'Only one Lapse process may use an embedded database. Stop the other process, use another --data-dir, or set DATABASE_URL to share a PostgreSQL server between replicas.',
        });
      }
      if (holder && holder.host !== hostname()) {
        throw new LapseError('storage_locked', `the data directory ${dataDir} is locked by host ${holder.host}`, {
          where: path,
          hint: 'If that host no longer runs Lapse, delete the lock file.',
        });
      }
      rmSync(path, { force: true }); // stale: its process is gone
    }
  }
  throw new LapseError('storage_locked', `could not lock the data directory ${dataDir}`, { where: path });
}

function readHolder(path: string): { pid: number; host: string } | null {
  try {
    const parsed = JSON.parse(readFileSync(path, 'utf8')) as { pid?: unknown; host?: unknown };
    return typeof parsed.pid === 'number' && typeof parsed.host === 'string' ? { pid: parsed.pid, host: parsed.host } : null;
  } catch {
    return null;
  }
}

function isAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
