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
import { claimDueJobs, countJobs, msUntilNextJob, scheduleJob, completeJob, completeJobs } from './jobs.js';
import { insertGrant, lockAccessKeys } from './grants.js';
import type { Grant } from '../domain/grant.js';
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

/** Grants in `provisioning` with a due provision job each, due in creation order; returns their ids. */
async function grantsWithJobs(db: Parameters<typeof insertRequest>[0], principalId: string, count: number, key: (i: number) => string): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    const request = sampleRequest(principalId);
    await insertRequest(db, request, {});
    const grant: Grant = {
      id: newId('grant'),
      requestId: request.id,
      principalId,
      target: 'prod-db',
      entitlement: 'readonly',
      status: 'provisioning',
      durationMs: 60_000,
      breakGlass: false,
      parameters: {},
      activatedAt: null,
      expiresAt: null,
      endReason: null,
      endedBy: null,
      endedAt: null,
      extensions: 0,
    };
    await insertGrant(db, grant, key(i), new Date());
    await scheduleJob(db, 'provision', grant.id, { at: new Date(Date.now() - 60_000 + ids.length) });
    ids.push(grant.id);
  }
  return ids;
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
        store()
          .db.transaction()
          .execute(async (tx) => {
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
      store()
        .db.transaction()
        .execute(async (tx) => {
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

  it("hands a dead worker's claimed job to another worker at once", async () => {
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

  it('shares a claim fairly: principals take turns and one access key gets a bounded share', async () => {
    const db = store().db;
    // 12 due jobs of one access key (alice), queued before 2 jobs of bob on two other keys.
    const aliceJobs = await grantsWithJobs(db, 'alice', 12, () => 'prod-db/readonly/alice');
    const bobJobs = await grantsWithJobs(db, 'bob', 2, (i) => `prod-db/key-${i}/bob`);
    const worker = await registerWorker(store());
    const claimed = await claimDueJobs(db, worker.key, 5, 30_000, { perAccessKey: 3 });
    // Turns: alice#1, bob#1, alice#2, bob#2, alice#3; never more than 3 of alice's key.
    expect(claimed.map((j) => j.subjectId)).toEqual([aliceJobs[0], bobJobs[0], aliceJobs[1], bobJobs[1], aliceJobs[2]]);
    const rest = await claimDueJobs(db, worker.key, 100, 30_000, { perAccessKey: 3 });
    expect(rest.map((j) => j.subjectId)).toEqual(aliceJobs.slice(3, 6));
    await completeJobs(db, [...claimed, ...rest], worker.key);
    const all = await claimDueJobs(db, worker.key, 100, 30_000);
    expect(all.map((j) => j.subjectId)).toEqual(aliceJobs.slice(6));
    await completeJobs(db, all, worker.key);
    await worker.release();
  });

  it('locks access keys until the transaction ends, without waiting on its own locks', async () => {
    const db = store().db;
    // Overlapping sets, in different orders, some twice: taken sorted, and re-entrant.
    await db.transaction().execute(async (tx) => {
      await lockAccessKeys(tx, ['k/b', 'k/a', 'k/b']);
      await lockAccessKeys(tx, ['k/a', 'k/c']);
    });
    if (store().kind !== 'postgres') return; // one session: nothing else can hold them
    const order: string[] = [];
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const first = db.transaction().execute(async (tx) => {
      await lockAccessKeys(tx, ['k/x', 'k/y']);
      order.push('first locked');
      await held;
      order.push('first done');
    });
    await new Promise((resolve) => setTimeout(resolve, 100));
    const second = db.transaction().execute(async (tx) => {
      await lockAccessKeys(tx, ['k/y', 'k/z']);
      order.push('second locked');
    });
    await new Promise((resolve) => setTimeout(resolve, 200));
    release();
    await Promise.all([first, second]);
    expect(order).toEqual(['first locked', 'first done', 'second locked']);
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
