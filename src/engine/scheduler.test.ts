import { pino } from 'pino';
import { expect, it } from 'vitest';
import { describeEachStore } from '../../test/support/stores.js';
import { completeJob, scheduleJob, type Job } from '../store/index.js';
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
});
