import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { decideRequest } from '../domain/request.js';
import { newId } from '../domain/ids.js';
import { isLapseError } from '../domain/errors.js';
import { describeEachStore } from '../../test/support/stores.js';
import { openStore } from './database.js';
import { claimDueJobs, countJobs, msUntilNextJob, scheduleJob, completeJob } from './jobs.js';
import { getRequest, insertRequest, listRequests } from './requests.js';
import { pendingMigrations, databaseNow } from './database.js';
import { registerWorker } from './workers.js';

function sampleRequest(principalId = 'alice') {
  return decideRequest(
    {
      id: newId('request'),
      kind: 'access',
      principal: { id: principalId, kind: 'user', groups: ['sre'] },
      target: 'prod-db',
      entitlement: 'readonly',
      reason: 'investigating INC-1',
      ticket: null,
      parameters: {},
      grantId: null,
    },
    {
      outcome: 'pending',
      policy: 'p',
      policyVersion: 'v1',
      reasons: ['matched p'],
      stages: [{ name: 'leads', approvers: { users: [], groups: ['leads'] }, quorum: 1 }],
      durationMs: 3_600_000,
      pendingTimeoutMs: 86_400_000,
    },
    new Date('2026-01-01T00:00:00Z'),
  );
}

describeEachStore('storage', ({ store }) => {
  it('has applied every migration', async () => {
    expect(await pendingMigrations(store().db)).toEqual([]);
  });

  it('round-trips a request with its JSON columns and dates', async () => {
    const request = sampleRequest();
    await insertRequest(store().db, request, { ip: '127.0.0.1' });
    const loaded = await getRequest(store().db, request.id);
    expect(loaded).toEqual(request);
  });

  it('commits every one of many overlapping transactions', async () => {
    const requests = Array.from({ length: 25 }, (_, i) => sampleRequest(`user-${i}`));
    await Promise.all(
      requests.map((request) =>
        store().db.transaction().execute(async (tx) => {
          await insertRequest(tx, request, {});
          // Give other transactions a chance to interleave before this one commits.
          await sql`SELECT pg_sleep(0.005)`.execute(tx);
        }),
      ),
    );
    const stored = await listRequests(store().db, { limit: 1000 });
    for (const request of requests) expect(stored.some((r) => r.id === request.id)).toBe(true);
  });

  it('rolls back every write of a failed transaction', async () => {
    const request = sampleRequest();
    await expect(
      store().db.transaction().execute(async (tx) => {
        await insertRequest(tx, request, {});
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect(await getRequest(store().db, request.id)).toBeUndefined();
  });

  it('rejects a state the schema does not know', async () => {
    const request = { ...sampleRequest(), status: 'approvedish' as never };
    await expect(insertRequest(store().db, request, {})).rejects.toThrow(/check constraint/);
  });

  it('claims a due job once, and not before it is due', async () => {
    const db = store().db;
    const worker = await registerWorker(store());
    await scheduleJob(db, 'expire', 'grt_later', { delayMs: 60_000 });
    await scheduleJob(db, 'expire', 'grt_now', { delayMs: 0 });
    const first = await claimDueJobs(db, worker.key, 10, 30_000);
    expect(first.map((j) => j.subjectId)).toEqual(['grt_now']);
    // Held by a live worker: nobody else gets it.
    expect(await claimDueJobs(db, worker.key + 1, 10, 30_000)).toEqual([]);
    await completeJob(db, first[0]!, worker.key);
    await worker.release();
    expect((await countJobs(db)).expire).toBe(1);
    const wait = await msUntilNextJob(db);
    expect(wait).toBeGreaterThan(55_000);
    expect(wait).toBeLessThanOrEqual(60_000);
  });

  it('hands a dead worker\'s claimed job to another worker at once', async () => {
    const db = store().db;
    const dead = await registerWorker(store());
    await scheduleJob(db, 'revoke', 'grt_orphan', { delayMs: 0 });
    expect((await claimDueJobs(db, dead.key, 10, 60_000)).map((j) => j.subjectId)).toEqual(['grt_orphan']);
    await dead.release(); // the process "died": its lock is gone, its lease is not over
    const alive = await registerWorker(store());
    const taken = await claimDueJobs(db, alive.key, 10, 60_000);
    expect(taken.map((j) => j.subjectId)).toEqual(['grt_orphan']);
    expect(taken[0]!.attempts).toBe(2);
    await completeJob(db, taken[0]!, alive.key);
    await alive.release();
  });

  it('reads time from the database clock', async () => {
    const now = await databaseNow(store().db);
    expect(Math.abs(now.getTime() - Date.now())).toBeLessThan(5_000);
  });
});

describe('embedded data directory', () => {
  it('refuses a second process-level open of the same data directory', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lapse-lock-'));
    try {
      const first = await openStore({ dataDir: join(dir, 'data') });
      try {
        const second = openStore({ dataDir: join(dir, 'data') });
        await expect(second).rejects.toSatisfy((error) => isLapseError(error, 'storage_locked'));
        await expect(second).rejects.toThrow(/in use by process/);
      } finally {
        await first.close();
      }
      // Once closed, it opens again (and the data survived).
      const again = await openStore({ dataDir: join(dir, 'data') });
      expect(await pendingMigrations(again.db)).toEqual([]);
      await again.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
