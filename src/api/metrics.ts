import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Engine } from '../engine/index.js';

/**
 * The Prometheus families Lapse exposes (each documented in docs/operations.md#metrics). Three
 * sources: the database at scrape time (the shared state: same answer on every replica), the
 * engine's committed audit entries (counters of what this process decided), and the engine's
 * telemetry (connector call timings, scheduler lag). Label values are bounded: route patterns, not
 * URLs; target names from the config; reasons and outcomes from fixed lists.
 */
const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
/** Revocation lag and scheduler lag: the product's bar is 1 s (p99), so resolution below and around it. */
const LAG_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 900];
const END_REASONS = new Set(['expired', 'released', 'revoked', 'provision_failed', 'cancelled']);

interface ChangeEntry {
  readonly action: string;
  readonly data?: Record<string, unknown>;
}

export class LapseMetrics {
  readonly registry = new Registry();
  private readonly httpRequests: Counter<'method' | 'route' | 'status'>;
  private readonly httpDuration: Histogram<'method' | 'route' | 'status'>;
  private readonly requests: Counter<'outcome'>;
  private readonly grantsEnded: Counter<'status' | 'reason'>;
  private readonly revocationLag: Histogram;
  private readonly connectorDuration: Histogram<'target' | 'connector' | 'operation' | 'outcome'>;
  private readonly connectorErrors: Counter<'target' | 'connector' | 'operation'>;
  private readonly breakGlass: Counter<'outcome'>;
  private readonly schedulerLag: Histogram<'kind'>;
  private readonly notificationSends: Counter<'channel' | 'outcome'>;

  constructor(private readonly engine: Engine) {
    const registers = [this.registry];
    // NB. The prefix is "lapse_": prom-client's names already start with process_ / nodejs_.
    collectDefaultMetrics({ register: this.registry, prefix: 'lapse_' });
    this.httpRequests = new Counter({
      name: 'lapse_http_requests_total',
      help: 'HTTP requests answered, by method, route pattern (unmatched: no route) and status',
      labelNames: ['method', 'route', 'status'],
      registers,
    });
    this.httpDuration = new Histogram({
      name: 'lapse_http_request_duration_seconds',
      help: 'Time to answer an HTTP request, by method, route pattern and status',
      labelNames: ['method', 'route', 'status'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.requests = new Counter({
      name: 'lapse_requests_total',
      help: 'Access and extension requests decided by this process: at submission auto_approved, pending, policy_denied or rejected (invalid input); pending ones later approved, denied, cancelled or timed_out',
      labelNames: ['outcome'],
      registers,
    });
    this.grantsEnded = new Counter({
      name: 'lapse_grants_ended_total',
      help: 'Grants closed by this process, by final status (revoked, failed, force_closed) and end reason',
      labelNames: ['status', 'reason'],
      registers,
    });
    this.revocationLag = new Histogram({
      name: 'lapse_revocation_lag_seconds',
      help: 'For grants ended by expiry: seconds from expiresAt until the revocation was recorded (access gone at the target)',
      buckets: LAG_BUCKETS,
      registers,
    });
    this.connectorDuration = new Histogram({
      name: 'lapse_connector_call_duration_seconds',
      help: 'Calls to targets (provision, extend, revoke, list, remove, check), by target, connector, operation and outcome (ok, error, timeout)',
      labelNames: ['target', 'connector', 'operation', 'outcome'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.connectorErrors = new Counter({
      name: 'lapse_connector_call_errors_total',
      help: 'Calls to targets that failed or timed out, by target, connector and operation',
      labelNames: ['target', 'connector', 'operation'],
      registers,
    });
    this.breakGlass = new Counter({
      name: 'lapse_break_glass_total',
      help: 'Break-glass attempts handled by this process: activated or refused',
      labelNames: ['outcome'],
      registers,
    });
    this.schedulerLag = new Histogram({
      name: 'lapse_scheduler_lag_seconds',
      help: 'How late durable jobs started: claim time minus due time, by kind (expire, revoke, provision...)',
      labelNames: ['kind'],
      buckets: LAG_BUCKETS,
      registers,
    });
    this.notificationSends = new Counter({
      name: 'lapse_notification_sends_total',
      help: 'Notification send attempts by this process, by channel and outcome: sent, error (retried later) or failed (given up)',
      labelNames: ['channel', 'outcome'],
      registers,
    });
    this.databaseGauges();
  }

  /** Starts counting the engine's changes and telemetry; returns the function that stops it. */
  attach(): () => void {
    const onChange = (entry: ChangeEntry) => this.countChange(entry);
    this.engine.events.on('change', onChange);
    const stopTelemetry = this.engine.telemetry.observe({
      connectorCall: (call) => {
        this.connectorDuration.observe({ target: call.target, connector: call.connector, operation: call.operation, outcome: call.outcome }, call.seconds);
        if (call.outcome !== 'ok') this.connectorErrors.inc({ target: call.target, connector: call.connector, operation: call.operation });
      },
      jobClaimed: (job) => this.schedulerLag.observe({ kind: job.kind }, job.lagSeconds),
      notificationSent: (send) => this.notificationSends.inc({ channel: send.channel, outcome: send.outcome }),
    });
    return () => {
      this.engine.events.off('change', onChange);
      stopTelemetry();
    };
  }

  httpRequest(method: string, route: string | undefined, status: number, seconds: number): void {
    const labels = { method, route: route ?? 'unmatched', status: String(status) };
    this.httpRequests.inc(labels);
    this.httpDuration.observe(labels, seconds);
  }

  private countChange(entry: ChangeEntry): void {
    const data = entry.data ?? {};
    const [kind, what] = entry.action.split('.', 2) as [string, string | undefined];
    if ((kind === 'request' || kind === 'extension') && what !== undefined) {
      const byPeople = data.by === 'review';
      const outcome = {
        approved: byPeople ? 'approved' : 'auto_approved',
        denied: byPeople ? 'denied' : 'policy_denied',
        pending: 'pending',
        cancelled: 'cancelled',
        timed_out: 'timed_out',
        rejected: 'rejected',
      }[what];
      if (outcome !== undefined) this.requests.inc({ outcome });
    } else if (entry.action === 'break_glass.activated' || entry.action === 'break_glass.refused') {
      this.breakGlass.inc({ outcome: what! });
    } else if ((entry.action === 'grant.revoked' || entry.action === 'grant.failed') && typeof data.targetCall === 'boolean') {
      // NB. Only the closing entry carries targetCall; an admin's "grant.revoked" (revoking begins) does not.
      const reason = typeof data.reason === 'string' && END_REASONS.has(data.reason) ? data.reason : 'unknown';
      this.grantsEnded.inc({ status: what!, reason });
      if (reason === 'expired' && typeof data.expiresAt === 'string') {
        this.revocationLag.observe(Math.max(0, Date.now() - Date.parse(data.expiresAt)) / 1000);
      }
    } else if (entry.action === 'grant.force_closed') {
      this.grantsEnded.inc({ status: 'force_closed', reason: 'force_closed' });
    }
  }

  private databaseGauges(): void {
    const registers = [this.registry];
    const engine = this.engine;
    // One query per scrape feeds all of these: the first collect reads, the others reuse it.
    let reading: { at: number; value: ReturnType<Engine['operationalGauges']> } | null = null;
    const read = () => {
      if (reading === null || Date.now() - reading.at > 1_000) reading = { at: Date.now(), value: engine.operationalGauges() };
      return reading.value;
    };
    new Gauge({
      name: 'lapse_grants',
      help: 'Grants by state: provisioning, active (access held now), revoking (access being removed)',
      labelNames: ['state'],
      registers,
      async collect() {
        const { grants } = await read();
        for (const [state, count] of Object.entries(grants)) this.set({ state }, count);
      },
    });
    new Gauge({
      name: 'lapse_requests_pending',
      help: 'Requests waiting for approval',
      registers,
      async collect() {
        this.set((await read()).pendingRequests);
      },
    });
    let appended = 0;
    new Counter({
      name: 'lapse_audit_events_total',
      help: 'Audit events appended to the hash chain (by every replica and CLI: the chain head)',
      registers,
      async collect() {
        const { head } = (await read()).audit;
        if (head > appended) this.inc(head - appended);
        appended = Math.max(appended, head);
      },
    });
    new Gauge({
      name: 'lapse_audit_unsigned_events',
      help: 'Audit events not yet covered by a signed checkpoint',
      registers,
      async collect() {
        const { head, signed } = (await read()).audit;
        this.set(head - signed);
      },
    });
    new Gauge({
      name: 'lapse_audit_last_checkpoint_age_seconds',
      help: 'Seconds since the newest signed audit checkpoint (absent before the first)',
      registers,
      async collect() {
        const { lastCheckpointAt } = (await read()).audit;
        this.reset();
        if (lastCheckpointAt !== null) this.set((Date.now() - lastCheckpointAt.getTime()) / 1000);
      },
    });
    this.auditExportGauges();
  }

  /** Export lag per sink and witness stream (label values: the configured names). */
  private auditExportGauges(): void {
    const registers = [this.registry];
    const engine = this.engine;
    let reading: { at: number; value: ReturnType<Engine['read']['auditExports']> } | null = null;
    const read = () => {
      if (reading === null || Date.now() - reading.at > 1_000) reading = { at: Date.now(), value: engine.read.auditExports() };
      return reading.value;
    };
    const gauge = (name: string, help: string, value: (s: Awaited<ReturnType<typeof read>>[number]) => number) =>
      new Gauge({
        name,
        help,
        labelNames: ['stream'],
        registers,
        async collect() {
          this.reset();
          for (const status of await read()) this.set({ stream: status.stream }, value(status));
        },
      });
    gauge(
      'lapse_audit_export_behind',
      'Audit events (sink streams) or checkpoints (checkpoint streams) not yet delivered, by stream (sink:NAME, sink-checkpoints:NAME, witness:NAME)',
      (s) => s.behind,
    );
    gauge('lapse_audit_export_lag_seconds', 'Age of the oldest audit event a sink has not delivered yet (0 when caught up), by stream', (s) => s.lagSeconds);
    gauge('lapse_audit_export_failures', 'Failed deliveries since the last good one, by stream (a sink that is down keeps counting)', (s) => s.failures);
  }
}
