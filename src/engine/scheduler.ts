import type { Logger } from 'pino';
import type pg from 'pg';
import {
  claimDueJobs,
  msUntilNextJob,
  registerWorker,
  releaseJobs,
  retryJob,
  type Job,
  type JobKind,
  type JobSelection,
  type Store,
  type WorkerLease,
} from '../store/index.js';
import { backoffMs } from './target-calls.js';

export type JobHandler = (job: Job, worker: number) => Promise<void>;
/** Handles many due jobs at once (expiry bursts); claimed jobs of its kinds go to it together. */
export interface BatchHandler {
  readonly kinds: readonly JobKind[];
  readonly run: (jobs: Job[], worker: number) => Promise<void>;
}

export interface SchedulerOptions {
  readonly store: Store;
  readonly handlers: Partial<Record<JobKind, JobHandler>>;
  readonly batch?: BatchHandler;
  readonly logger: Logger;
  readonly pollIntervalMs: () => number;
  /** Jobs claimed per round trip; a burst of expiries is worked through in batches this size. */
  readonly batchSize?: number;
  /** Jobs run at once (connector calls overlap; PGlite still serialises the database work). */
  readonly concurrency?: number;
  /** How long a claim lasts if its worker is alive but stuck. */
  readonly leaseMs?: number;
  /** Told of each claimed batch (the scheduler-lag metric). */
  readonly onClaimed?: (jobs: readonly Job[]) => void;
  /** Jobs of one access key per round (they run one after the other under the key's lock). */
  readonly perAccessKey?: number;
  /** How long stop() waits for jobs in flight before it gives up on them (default 5 s). */
  readonly stopGraceMs?: number;
  /** The kinds of job this scheduler runs (default all): notifications run apart from the lifecycle. */
  readonly kinds?: JobSelection;
}

/** A round runs at most this many jobs of one access key unless told otherwise (see claimDueJobs). */
const PER_ACCESS_KEY = 4;

/**
 * SQLSTATEs that say "this transaction lost a race, try it again": deadlock_detected,
 * serialization_failure, lock_not_available (lock_timeout). Such a job is retried after a moment,
 * not after the 1 s to 60 s backoff meant for real failures.
 */
const TRANSIENT_CONFLICTS = new Set(['40P01', '40001', '55P03']);

export function isTransientConflict(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && TRANSIENT_CONFLICTS.has(code);
}

/**
 * The durable scheduler. It keeps no per-grant timers: the jobs table is the only truth, and the
 * one in-memory timer is "wake at the earliest due row". On start it catches up on everything
 * overdue at once. Several schedulers on one PostgreSQL share work through SKIP LOCKED claims and
 * hear each other's new work through LISTEN/NOTIFY.
 */
export class Scheduler {
  private lease: WorkerLease | null = null;
  private listener: pg.Client | null = null;
  private running = false;
  /** Claimed jobs of the current round that no lane has started yet (stop() hands them back). */
  private unstarted: Job[] = [];
  private loop: Promise<void> | null = null;
  private wake: (() => void) | null = null;
  private poked = false;
  private lastRound = 0;

  constructor(private readonly options: SchedulerOptions) {}

  /** The worker's liveness key (null before start). */
  get workerKey(): number | null {
    return this.lease?.key ?? null;
  }

  /** When the scheduler last completed a round; /readyz uses it to tell a stuck scheduler. */
  get lastRoundAt(): number {
    return this.lastRound;
  }

  async start(): Promise<void> {
    if (this.running) return;
    this.lease = await registerWorker(this.options.store);
    this.running = true;
    this.listener = await this.options.store.connect();
    if (this.listener) {
      this.listener.on('notification', () => this.poke());
      await this.listener.query('LISTEN lapse_jobs');
    }
    this.loop = this.run();
  }

  /**
   * Stops claiming, hands back the claimed jobs not yet started, and waits for the jobs in flight
   * for at most the grace period. NB. A stalled round (a target call or a database lock that does
   * not come back) must not keep a server from stopping: after the grace period the worker's lock
   * is released anyway, so another worker takes over the jobs still in flight at once (every step
   * is safe to repeat), and anything this process still finishes later is harmless.
   */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.poke();
    // The jobs not started go back, free for any worker to claim at once.
    const unstarted = this.unstarted.splice(0);
    if (unstarted.length > 0 && this.lease) {
      const handedBack = releaseJobs(this.options.store.db, unstarted, this.lease.key).catch((error: unknown) => {
        this.options.logger.warn({ err: error }, 'could not hand back unstarted jobs; their claims end with this worker');
      });
      await within(handedBack, 1_000);
    }
    const graceMs = this.options.stopGraceMs ?? 5_000;
    const finished = await within(this.loop ?? Promise.resolve(), graceMs);
    if (!finished) this.options.logger.warn({ graceMs }, 'scheduler stopped with jobs still in flight; another worker takes them over');
    await within(this.listener?.end().catch(() => {}) ?? Promise.resolve(), 1_000);
    this.listener = null;
    await within(this.lease?.release() ?? Promise.resolve(), 1_000);
    this.lease = null;
  }

  /** There may be work due now. */
  poke(): void {
    this.poked = true;
    this.wake?.();
  }

  /** Runs every due job until none is left (tests and the CLI use it directly). */
  async drain(): Promise<number> {
    let total = 0;
    for (;;) {
      const ran = await this.round();
      total += ran;
      if (ran === 0) return total;
    }
  }

  private async run(): Promise<void> {
    while (this.running) {
      try {
        const ran = await this.round();
        this.lastRound = Date.now();
        if (ran > 0) continue;
        await this.sleep(await this.nextWait());
      } catch (error) {
        this.options.logger.error({ err: error }, 'scheduler round failed; retrying');
        await this.sleep(1000);
      }
    }
  }

  private async nextWait(): Promise<number> {
    const poll = this.options.pollIntervalMs();
    const next = await msUntilNextJob(this.options.store.db, this.options.kinds);
    return next === null ? poll : Math.min(poll, next);
  }

  private sleep(ms: number): Promise<void> {
    if (this.poked || !this.running) {
      this.poked = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.wake = null;
        this.poked = false;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wake = done;
    });
  }

  /** Claims one batch of due jobs and runs it; returns how many ran. */
  private async round(): Promise<number> {
    const worker = this.lease?.key;
    if (worker === undefined) throw new Error('scheduler not started');
    const batch = this.options.batchSize ?? 100;
    const leaseMs = this.options.leaseMs ?? 120_000;
    const jobs = await claimDueJobs(this.options.store.db, worker, batch, leaseMs, {
      perAccessKey: this.options.perAccessKey ?? PER_ACCESS_KEY,
      ...(this.options.kinds ? { kinds: this.options.kinds } : {}),
    });
    if (jobs.length === 0) return 0;
    this.options.onClaimed?.(jobs);
    const batched = this.options.batch;
    const together = batched ? jobs.filter((job) => batched.kinds.includes(job.kind)) : [];
    const single = jobs.filter((job) => !together.includes(job));
    const concurrency = this.options.concurrency ?? (this.options.store.kind === 'pglite' ? 4 : 8);
    this.unstarted = [...single];
    const lanes = Array.from({ length: Math.min(concurrency, single.length) }, async () => {
      for (let job = this.unstarted.shift(); job; job = this.unstarted.shift()) await this.runJob(job, worker);
    });
    await Promise.all([...lanes, ...(batched && together.length > 0 ? [this.runBatch(batched, together, worker)] : [])]);
    return jobs.length;
  }

  private async runBatch(handler: BatchHandler, jobs: Job[], worker: number): Promise<void> {
    try {
      await handler.run(jobs, worker);
    } catch (error) {
      this.log(error, { jobs: jobs.length }, 'job batch failed');
      for (const job of jobs) await this.retry(job, worker, error);
    }
  }

  private async runJob(job: Job, worker: number): Promise<void> {
    try {
      const handler = this.options.handlers[job.kind];
      if (!handler) throw new Error(`no handler for ${job.kind} jobs`);
      await handler(job, worker);
    } catch (error) {
      this.log(error, { job: job.id, kind: job.kind, subject: job.subjectId }, 'job failed');
      await this.retry(job, worker, error);
    }
  }

  private log(error: unknown, fields: Record<string, unknown>, message: string): void {
    if (isTransientConflict(error)) this.options.logger.warn({ err: error, ...fields }, `${message} (lost a race in the database); retrying shortly`);
    else this.options.logger.error({ err: error, ...fields }, message);
  }

  /**
   * A handler that throws (database hiccup, target removed from config) is retried with backoff;
   * its job row stays, so nothing is forgotten. A job the handler already completed is unaffected.
   * A job that lost a race (deadlock, serialization failure, lock timeout) is retried within
   * 25 ms to 1 s, alone: the rest of its round has gone on without it.
   */
  private async retry(job: Job, worker: number, error: unknown): Promise<void> {
    const delay = isTransientConflict(error) ? backoffMs(job.attempts, 50, 1_000) : backoffMs(job.attempts, 1_000, 60_000);
    await retryJob(this.options.store.db, job, worker, delay, error instanceof Error ? error.message : String(error)).catch((retryError: unknown) => {
      this.options.logger.error({ err: retryError, job: job.id }, 'could not reschedule job; its lease will expire');
    });
  }
}

/** Whether `promise` settled within `ms` (it is left running if not). */
async function within(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([
      promise.then(
        () => true,
        () => true,
      ),
      timeout,
    ]);
  } finally {
    clearTimeout(timer);
  }
}
