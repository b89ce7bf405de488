import type { Connector, ConnectorRegistry } from '../connectors/index.js';
import type { TargetConfig } from '../config/types.js';
import { isLapseError } from '../domain/errors.js';
import type { Job, JobKind } from '../store/index.js';

/**
 * Measurements the engine makes as things happen, for whoever observes them (the /metrics
 * registry). The engine knows nothing of Prometheus; with no observer a measurement costs a loop
 * over an empty set.
 */
export type ConnectorOperation = 'provision' | 'extend' | 'revoke' | 'list' | 'remove' | 'check';

export interface ConnectorCallSample {
  readonly target: string;
  readonly connector: string;
  readonly operation: ConnectorOperation;
  readonly seconds: number;
  /** error: the call failed; timeout: it ran past its deadline (connector_timeout or aborted). */
  readonly outcome: 'ok' | 'error' | 'timeout';
}

export interface JobClaimSample {
  readonly kind: JobKind;
  /** How late the job started: claim time minus due time (0 when on time). */
  readonly lagSeconds: number;
}

export interface NotificationSendSample {
  readonly channel: string;
  /** sent; error: will be retried; failed: given up (or refused for good). */
  readonly outcome: 'sent' | 'error' | 'failed';
  readonly seconds: number;
}

export interface TelemetryObserver {
  connectorCall?(sample: ConnectorCallSample): void;
  jobClaimed?(sample: JobClaimSample): void;
  notificationSent?(sample: NotificationSendSample): void;
}

export class Telemetry {
  private readonly observers = new Set<TelemetryObserver>();

  /** Starts delivering measurements to `observer`; returns the function that stops it. */
  observe(observer: TelemetryObserver): () => void {
    this.observers.add(observer);
    return () => this.observers.delete(observer);
  }

  connectorCall(sample: ConnectorCallSample): void {
    for (const observer of this.observers) observer.connectorCall?.(sample);
  }

  notificationSent(sample: NotificationSendSample): void {
    for (const observer of this.observers) observer.notificationSent?.(sample);
  }

  jobsClaimed(jobs: readonly Job[], now: number = Date.now()): void {
    if (this.observers.size === 0) return;
    for (const job of jobs) {
      const sample = { kind: job.kind, lagSeconds: Math.max(0, now - job.dueAt.getTime()) / 1000 };
      for (const observer of this.observers) observer.jobClaimed?.(sample);
    }
  }
}

/** Connector methods that reach the target, and the operation each is counted as. */
const TIMED: Readonly<Record<string, ConnectorOperation>> = {
  provision: 'provision',
  extend: 'extend',
  revoke: 'revoke',
  listAccess: 'list',
  removeAccess: 'remove',
  checkTarget: 'check',
};

/**
 * The registry with every connector's target calls timed. NB. Timed here rather than at each call
 * site so no path (provision, revoke batches, reconciliation, checks) can be missed; the wrapper
 * forwards everything else to the connector itself, so `instanceof` and connector-specific
 * methods (an ssh target's CA key) keep working.
 */
export function timedConnectors(registry: ConnectorRegistry, telemetry: Telemetry): ConnectorRegistry {
  const wrapped = new WeakMap<Connector, Connector>();
  return {
    types: () => registry.types(),
    get: (type) => {
      const connector = registry.get(type);
      if (!connector) return undefined;
      let timed = wrapped.get(connector);
      if (timed === undefined) {
        timed = timeCalls(connector, telemetry);
        wrapped.set(connector, timed);
      }
      return timed;
    },
  };
}

function timeCalls(connector: Connector, telemetry: Telemetry): Connector {
  return new Proxy(connector, {
    get(target, property) {
      const value: unknown = Reflect.get(target, property, target);
      if (typeof value !== 'function') return value;
      const operation = typeof property === 'string' ? TIMED[property] : undefined;
      const method = value as (...args: unknown[]) => unknown;
      if (operation === undefined) return method.bind(target);
      return async (...args: unknown[]) => {
        const started = performance.now();
        const signal = args.find((arg): arg is AbortSignal => arg instanceof AbortSignal);
        const sample = (outcome: ConnectorCallSample['outcome']) =>
          telemetry.connectorCall({
            target: targetName(args[0]),
            connector: connector.type,
            operation,
            seconds: (performance.now() - started) / 1000,
            outcome,
          });
        try {
          const result = await method.apply(target, args);
          sample('ok');
          return result;
        } catch (error) {
          sample(isLapseError(error, 'connector_timeout') || signal?.aborted ? 'timeout' : 'error');
          throw error;
        }
      };
    },
  });
}

/** The first argument is a GrantSpec (with .target) or a TargetConfig. */
function targetName(first: unknown): string {
  const candidate = first as { target?: TargetConfig; name?: string } | undefined;
  return candidate?.target?.name ?? candidate?.name ?? 'unknown';
}
