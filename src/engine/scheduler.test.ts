import { pino } from 'pino';
import { expect, it } from 'vitest';
import { describeEachStore } from '../../test/support/stores.js';
import { alice, startEngine, TEST_CONFIG, waitFor } from '../../test/support/engine.js';
import { completeJob, getGrant, getRequest, scheduleJob, type Job } from '../store/index.js';
import { Scheduler } from './scheduler.js';

describeEachStore('scheduler', ({ store }) => {
  it('retries a job that lost a race (deadlock) within a second each time, while the rest of its round goes on', async () => {
    const db = store().db;
    const done = new Map<string, number>();
    let deadlocks = 0;
    const scheduler = new Scheduler({
      store: store(),
      logger: pino({ level: 'silent' }),
      pollIntervalMs: () => 100,
      handlers: {
        provision: async (job: Job, worker: number) => {
          if (job.subjectId === 'grt_unlucky' && deadlocks < 5) {
            deadlocks++;
            throw Object.assign(new Error('deadlock detected'), { code: '40P01' });
          }
          await completeJob(db, job, worker);
          done.set(job.subjectId, Date.now());
        },
      },
    });
    for (const subject of ['grt_unlucky', 'grt_a', 'grt_b', 'grt_c']) await scheduleJob(db, 'provision', subject, { delayMs: 0 });
    const started = Date.now();
    await scheduler.start();
    try {
      const deadline = started + 10_000;
      while (!done.has('grt_unlucky') && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    } finally {
      await scheduler.stop();
    }
    expect(deadlocks).toBe(5);
    // The others did not wait for the unlucky one.
    for (const subject of ['grt_a', 'grt_b', 'grt_c']) expect(done.get(subject)! - started).toBeLessThan(2_000);
    // Five retries of at most 1 s each (the backoff for real failures would be 0.5 + 1 + 2 + 4 + 8 s at least).
    expect(done.get('grt_unlucky')! - started).toBeLessThan(5_000);
  });

  it('stops within its grace period while a job hangs, handing back the jobs it had not started', async () => {
    const db = store().db;
    let release!: () => void;
    const hanging = new Promise<void>((resolve) => (release = resolve));
    const ran: string[] = [];
    const scheduler = new Scheduler({
      store: store(),
      logger: pino({ level: 'silent' }),
      pollIntervalMs: () => 100,
      concurrency: 1,
      stopGraceMs: 500,
      handlers: {
        request_timeout: async (job: Job, worker: number) => {
          ran.push(job.subjectId);
          if (job.subjectId === 'req_stuck') await hanging; // a round that never ends by itself
          await completeJob(db, job, worker);
        },
      },
    });
    await scheduleJob(db, 'request_timeout', 'req_stuck', { at: new Date(Date.now() - 60_000) });
    for (const subject of ['req_next1', 'req_next2']) await scheduleJob(db, 'request_timeout', subject, { delayMs: 0 });
    await scheduler.start();
    try {
      await waitFor(
        async () => ran,
        (r) => r.includes('req_stuck'),
      );
      const stopping = Date.now();
      await scheduler.stop();
      expect(Date.now() - stopping).toBeLessThan(2_000);
      // Not started, and free for any worker to take at once.
      expect(ran).toEqual(['req_stuck']);
      const left = await db
        .selectFrom('jobs')
        .select(['subject_id', 'locked_by'])
        .where('subject_id', 'in', ['req_next1', 'req_next2'])
        .orderBy('subject_id')
        .execute();
      expect(left).toEqual([
        { subject_id: 'req_next1', locked_by: null },
        { subject_id: 'req_next2', locked_by: null },
      ]);
    } finally {
      release();
    }
    await db.deleteFrom('jobs').where('subject_id', 'in', ['req_stuck', 'req_next1', 'req_next2']).execute();
  });

  it('lets a server with a stalled scheduler stop, and another worker takes over the stalled job', async () => {
    // A target call that hangs for 20 s (the connector timeout is 60 s): the scheduler's round is stuck.
    const slow = await startEngine(store(), { yaml: TEST_CONFIG.replace('connectorTimeout: 2s', 'connectorTimeout: 60s') });
    slow.noop.behaviour('prod-db').delayMs = 20_000;
    const { request } = await slow.engine.submit({ principal: alice, target: 'prod-db', entitlement: 'readonly', reason: 'stalled target' });
    const grantId = request.grantId!;
    await waitFor(
      () => store().db.selectFrom('connector_attempts').select('id').where('grant_id', '=', grantId).execute(),
      (rows) => rows.length > 0,
    );
    const stopping = Date.now();
    await slow.engine.stop();
    // The default grace is 5 s; without it, stop waited for the hanging call (20 s).
    expect(Date.now() - stopping).toBeLessThan(8_000);

    const next = await startEngine(store());
    try {
      const active = await waitFor(
        () => getGrant(store().db, grantId),
        (g) => g?.status === 'active',
        10_000,
      );
      expect(active!.requestId).toBe((await getRequest(store().db, request.id))!.id);
    } finally {
      await next.stop();
    }
  }, 40_000);
});
