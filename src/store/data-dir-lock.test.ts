import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { isLapseError } from '../domain/errors.js';
import { lockDataDir } from './data-dir-lock.js';

/**
 * The embedded data directory's lock as the operating system leaves it: a lock file naming a
 * process that may be gone, may be us in a previous life (a container's PID 1), or may be an
 * unrelated process that got the same PID.
 */
const root = mkdtempSync(join(tmpdir(), 'lapse-dir-lock-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let count = 0;
const freshDir = () => join(root, `d${++count}`);
const releases: (() => void)[] = [];
afterEach(() => {
  while (releases.length > 0) releases.pop()!();
});
const children: ChildProcess[] = [];
afterAll(() => {
  for (const child of children) child.kill('SIGKILL');
});

/** The kernel's start time of a process (field 22 of /proc/<pid>/stat), read independently here. */
function startTimeOf(pid: number): string {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]!;
}

function leaveLock(dir: string, holder: Record<string, unknown>, ageMs = 0): string {
  const path = join(dir, 'lapse.lock');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  writeFileSync(path, JSON.stringify({ host: hostname(), since: new Date().toISOString(), ...holder }));
  const at = new Date(Date.now() - ageMs);
  utimesSync(path, at, at);
  return path;
}

async function sleeper(): Promise<number> {
  const child = spawn('sleep', ['120'], { stdio: 'ignore' });
  children.push(child);
  await new Promise((resolve) => child.once('spawn', resolve));
  return child.pid!;
}

describe('embedded data directory lock', () => {
  it('takes over a lock left with our own PID by a previous life of this process (a container restarted after kill -9)', async () => {
    const dir = freshDir();
    // The previous PID 1 wrote the lock moments ago: same host, same PID, another start time.
    leaveLock(dir, { pid: process.pid, start: '1' });
    const started = Date.now();
    releases.push(await lockDataDir(dir));
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(JSON.parse(readFileSync(join(dir, 'lapse.lock'), 'utf8'))).toMatchObject({ pid: process.pid, start: startTimeOf(process.pid) });
    // A lock file from before start times were recorded, naming our PID, is ours to take too.
    const legacy = freshDir();
    leaveLock(legacy, { pid: process.pid });
    releases.push(await lockDataDir(legacy));
  });

  it('takes over a lock whose PID now belongs to an unrelated live process (started at another time)', async () => {
    const pid = await sleeper();
    const dir = freshDir();
    leaveLock(dir, { pid, start: String(Number(startTimeOf(pid)) - 1) });
    releases.push(await lockDataDir(dir));
    expect(JSON.parse(readFileSync(join(dir, 'lapse.lock'), 'utf8'))).toMatchObject({ pid: process.pid });
  });

  it('refuses while the process named in the lock is the one that took it', async () => {
    const pid = await sleeper();
    const dir = freshDir();
    const path = leaveLock(dir, { pid, start: startTimeOf(pid) });
    const attempt = lockDataDir(dir);
    await expect(attempt).rejects.toSatisfy((error) => isLapseError(error, 'storage_locked'));
    await expect(attempt).rejects.toThrow(`the data directory ${dir} is in use by process ${pid}`);
    expect(JSON.parse(readFileSync(path, 'utf8'))).toMatchObject({ pid });
  });

  it('takes over a lock whose process is gone', async () => {
    const child = spawn('true', { stdio: 'ignore' });
    await new Promise((resolve) => child.once('exit', resolve));
    const dir = freshDir();
    leaveLock(dir, { pid: child.pid, start: '5' });
    releases.push(await lockDataDir(dir));
  });

  it('refuses a second lock in the same process, and frees the directory on release', async () => {
    const dir = freshDir();
    const release = await lockDataDir(dir);
    await expect(lockDataDir(dir)).rejects.toThrow(/in use by process/);
    release();
    expect(existsSync(join(dir, 'lapse.lock'))).toBe(false);
    releases.push(await lockDataDir(dir));
  });

  it('keeps its lease fresh while held, so a process that cannot see it (another host) knows it is alive', async () => {
    const dir = freshDir();
    releases.push(await lockDataDir(dir, { heartbeatMs: 50 }));
    const path = join(dir, 'lapse.lock');
    const old = new Date(Date.now() - 60_000);
    utimesSync(path, old, old);
    await expect.poll(() => statSync(path).mtimeMs, { timeout: 2_000 }).toBeGreaterThan(Date.now() - 5_000);
  });

  it('waits out a fresh lease from a process it cannot see, and takes over a stale one', async () => {
    const dir = freshDir();
    leaveLock(dir, { pid: 1, host: 'another-host', start: '7' });
    const started = Date.now();
    await expect(lockDataDir(dir, { staleAfterMs: 600, waitMs: 300 })).rejects.toThrow(/locked by process 1 on host another-host, whose lease was renewed/);
    expect(Date.now() - started).toBeGreaterThanOrEqual(300);
    // Our PID, but in another PID namespace (another container sharing the volume): judged by its lease too.
    leaveLock(dir, { pid: process.pid, pidNamespace: 'pid:[1]', start: '7' });
    await expect(lockDataDir(dir, { staleAfterMs: 600, waitMs: 100 })).rejects.toThrow(/whose lease was renewed/);
    // Not renewed for longer than staleAfter: that process is gone.
    leaveLock(dir, { pid: 1, host: 'another-host', start: '7' }, 1_000);
    releases.push(await lockDataDir(dir, { staleAfterMs: 600 }));
    // A lease that goes stale while we wait is taken over without failing.
    releases.pop()!();
    leaveLock(dir, { pid: 1, host: 'another-host', start: '7' }, 300);
    releases.push(await lockDataDir(dir, { staleAfterMs: 600, waitMs: 2_000 }));
  });
});
