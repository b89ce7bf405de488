import { LapseError } from '../../domain/errors.js';
import { purgeExpired, type Binding } from './iam-policy.js';
import { backoff, EtagConflict, type ResourceManager } from './resource-manager.js';

/**
 * Read-modify-write of one resource's IAM policy, on its etag, shared by every call in this
 * process. An IAM policy is one document per resource: a thousand grants ending at once on one
 * project would otherwise be a thousand writers racing on one etag, each losing to the others. So
 * changes to the same resource queue up and are applied together: one read, every queued change,
 * expired Lapse bindings purged, one write. A stale etag (HTTP 409 ABORTED, or 412
 * FAILED_PRECONDITION as some clients see it) means someone else wrote in between: read again and
 * re-apply, with backoff. Other Lapse replicas are just such someone.
 *
 * NB. Every change ends in a write, even one that finds nothing to change: a successful
 * setIamPolicy with the etag of the read is the only proof the API offers that the read was
 * current, and a revoke that trusted a stale read ("no binding here") would leave the access.
 */
export type Mutation = (bindings: Binding[]) => void;

export interface ChangeResult {
  /** The policy read again after the write, when asked for: what a reader sees now. */
  readonly readBack: Binding[] | null;
}

interface Change {
  readonly mutate: Mutation;
  readonly readBack: boolean;
  readonly signal: AbortSignal;
  resolve(result: ChangeResult): void;
  reject(error: unknown): void;
}

interface Queue {
  readonly api: ResourceManager;
  readonly pending: Change[];
  running: boolean;
}

/** Attempts of one batch against etag conflicts before its callers are told to retry later. */
const ETAG_ATTEMPTS = 10;
/** Changes merged into one write: bounds what one refused write (a 400) has to sort out. */
const MAX_BATCH = 250;

export class PolicyWriter {
  private readonly queues = new Map<string, Queue>();

  constructor(private readonly now: () => Date = () => new Date()) {}

  /** Applies `mutate` to the resource's bindings and writes them; `key` names the resource and the credentials used. */
  change(key: string, api: ResourceManager, resource: string, mutate: Mutation, options: { signal: AbortSignal; readBack?: boolean }): Promise<ChangeResult> {
    const { signal } = options;
    if (signal.aborted) return Promise.reject(deadline(resource, signal));
    return new Promise<ChangeResult>((resolve, reject) => {
      const onAbort = () => reject(deadline(resource, signal));
      signal.addEventListener('abort', onAbort, { once: true });
      const settle =
        <T>(fn: (value: T) => void) =>
        (value: T) => {
          signal.removeEventListener('abort', onAbort);
          fn(value);
        };
      let queue = this.queues.get(key);
      if (!queue) {
        queue = { api, pending: [], running: false };
        this.queues.set(key, queue);
      }
      queue.pending.push({ mutate, readBack: options.readBack === true, signal, resolve: settle(resolve), reject: settle(reject) });
      if (!queue.running) void this.drain(key, queue, resource);
    });
  }

  private async drain(key: string, queue: Queue, resource: string): Promise<void> {
    queue.running = true;
    try {
      while (queue.pending.length > 0) {
        // Callers whose deadline passed while they waited have been answered already.
        const batch = queue.pending.splice(0, MAX_BATCH).filter((c) => !c.signal.aborted);
        if (batch.length > 0) await this.apply(queue.api, resource, batch);
      }
    } finally {
      queue.running = false;
      if (queue.pending.length === 0) this.queues.delete(key);
    }
  }

  private async apply(api: ResourceManager, resource: string, batch: Change[]): Promise<void> {
    const signal = allAborted(batch.map((c) => c.signal));
    let changes = batch;
    try {
      for (let attempt = 1; ; attempt++) {
        const policy = await api.getPolicy(resource, signal);
        const bindings = structuredClone(policy.bindings ?? []);
        purgeExpired(bindings, this.now());
        changes = changes.filter((change) => {
          try {
            change.mutate(bindings);
            return true;
          } catch (error) {
            change.reject(error);
            return false;
          }
        });
        if (changes.length === 0) return;
        try {
          await api.setPolicy(resource, { etag: policy.etag ?? null, bindings }, signal);
        } catch (error) {
          if (error instanceof EtagConflict && attempt < ETAG_ATTEMPTS) {
            await backoff(attempt, signal, 50, 2_000);
            continue;
          }
          if (error instanceof EtagConflict) throw contention(resource, attempt);
          // One change Google refuses (a member it does not know, say) must not sink the rest.
          if (changes.length > 1 && error instanceof LapseError && error.code === 'connector_failed' && /HTTP 400/.test(error.message)) {
            for (const change of changes) await this.apply(api, resource, [change]);
            return;
          }
          throw error;
        }
        const readBack = changes.some((c) => c.readBack) ? ((await api.getPolicy(resource, signal)).bindings ?? []) : null;
        for (const change of changes) change.resolve({ readBack: change.readBack ? readBack : null });
        return;
      }
    } catch (error) {
      for (const change of changes) change.reject(signal.aborted && !(error instanceof LapseError) ? deadline(resource, signal) : error);
    }
  }
}

/** Aborts when every caller's signal has: a batch keeps going while anyone still waits for it. */
function allAborted(signals: AbortSignal[]): AbortSignal {
  const controller = new AbortController();
  const check = () => {
    if (signals.every((s) => s.aborted)) controller.abort(signals[0]?.reason);
  };
  for (const s of signals) s.addEventListener('abort', check, { once: true });
  check();
  return controller.signal;
}

function deadline(resource: string, signal: AbortSignal): LapseError {
  const reason = signal.reason instanceof Error ? signal.reason.message : 'aborted';
  return new LapseError('connector_timeout', `gcp-iam: changing the IAM policy of ${resource} did not finish before its deadline (${reason})`, {
    hint: 'check that Cloud Resource Manager is reachable and not throttling, or raise scheduler.connectorTimeout',
  });
}

function contention(resource: string, attempts: number): LapseError {
  return new LapseError('connector_failed', `gcp-iam: the IAM policy of ${resource} changed under Lapse ${attempts} times in a row (etag conflicts)`, {
    where: resource,
    hint: 'something else rewrites this policy continuously (another tool in a loop?); Lapse retries the call later',
  });
}
