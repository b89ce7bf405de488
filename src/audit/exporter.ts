import { randomBytes } from 'node:crypto';
import type { AuditExportSettings, AuditSinkSettings, AuditTransportSettings, AuditWitnessSettings } from '../domain/audit-export.js';
import {
  advanceExportCursor,
  claimExportCursor,
  fetchAuditEventRows,
  listAuditCheckpointsAfter,
  noteExportError,
  releaseExportCursor,
  type Executor,
} from '../store/index.js';
import { MAX_EVENT_BYTES } from './chain.js';
import { formatCheckpoint, formatEvent, type ExportFormat, type FormatOptions } from './export-formats.js';
import { OtlpTransport, SplunkHecTransport } from './export-http-transports.js';
import { FileTransport, SyslogTlsTransport, type AuditTransport, type ExportRecord } from './export-transports.js';
import { FileWitness, TimestampWitness } from './witnesses.js';

/** Checkpoints per delivery: they are rare (one per 1,000 events or per minute by default). */
const CHECKPOINT_BATCH = 100;

export interface ExporterOptions {
  readonly hostname: string;
  readonly productVersion: string;
  readonly onError: (stream: string, error: unknown) => void;
  /** Transports by settings; tests pass their own to inject failures. */
  readonly transport?: (settings: AuditTransportSettings, sink: string) => AuditTransport;
}

/** One durable stream: a sink's events, or the checkpoints going to a sink or a witness. */
interface Stream {
  /** The cursor's name: `sink:<name>`, `sink-checkpoints:<name>` or `witness:<name>`. */
  readonly cursor: string;
  readonly kind: 'events' | 'checkpoints';
  readonly format: ExportFormat;
  readonly batch: number;
  readonly transport: AuditTransport;
}

/** A sink's streams go out one after the other over its one transport; sinks and witnesses run side by side. */
interface Lane {
  readonly name: string;
  readonly streams: readonly Stream[];
  timer: NodeJS.Timeout | null;
  running: Promise<void> | null;
  failures: number;
}

export function transportFor(settings: AuditTransportSettings, hostname: string, timeoutMs: number): AuditTransport {
  switch (settings.type) {
    case 'file':
      return new FileTransport(settings);
    case 'syslog-tls':
      return new SyslogTlsTransport(settings);
    case 'splunk-hec':
      return new SplunkHecTransport({ ...settings, hostname });
    case 'otlp-http':
      return new OtlpTransport({ ...settings, timeoutMs });
  }
}

function witnessTransport(settings: AuditWitnessSettings): AuditTransport {
  return settings.type === 'file' ? new FileWitness(settings.path) : new TimestampWitness(settings);
}

/**
 * Streams the audit chain out of the database: each sink reads events by seq from its own durable
 * cursor, sends a batch, and only then moves the cursor (at least once, in order; a repeat carries
 * the same seq and hash, so a SIEM can drop it). Checkpoints go to the sinks that want them and to
 * every witness the same way. It only reads the chain, outside any transaction, on its own timers:
 * a sink that is down is retried with backoff and never holds up a request or a revoke.
 */
export class AuditExporter {
  private readonly owner = `exp_${randomBytes(8).toString('hex')}`;
  private readonly lanes: Lane[];
  private readonly format: FormatOptions;
  private stopped = true;
  /** Set by stop(): a long backlog yields after the batch in flight. */
  private stopping = false;

  constructor(
    private readonly db: Executor,
    private readonly settings: AuditExportSettings,
    private readonly options: ExporterOptions,
  ) {
    this.format = { hostname: options.hostname, productVersion: options.productVersion };
    const make = options.transport ?? ((t: AuditTransportSettings) => transportFor(t, options.hostname, settings.timeoutMs));
    this.lanes = [
      ...settings.sinks.map((sink) => this.sinkLane(sink, make(sink.transport, sink.name))),
      ...settings.witnesses.map((witness) => ({
        name: `witness:${witness.name}`,
        streams: [
          {
            cursor: `witness:${witness.name}`,
            kind: 'checkpoints' as const,
            format: 'jsonl' as const,
            batch: CHECKPOINT_BATCH,
            transport: witnessTransport(witness),
          },
        ],
        timer: null,
        running: null,
        failures: 0,
      })),
    ];
  }

  private sinkLane(sink: AuditSinkSettings, transport: AuditTransport): Lane {
    const streams: Stream[] = [{ cursor: `sink:${sink.name}`, kind: 'events', format: sink.format, batch: sink.batchSize, transport }];
    if (sink.checkpoints)
      streams.push({ cursor: `sink-checkpoints:${sink.name}`, kind: 'checkpoints', format: sink.format, batch: CHECKPOINT_BATCH, transport });
    return { name: `sink:${sink.name}`, streams, timer: null, running: null, failures: 0 };
  }

  /** The cursor names this exporter moves (for lag reports). */
  cursors(): string[] {
    return this.lanes.flatMap((lane) => lane.streams.map((s) => s.cursor));
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.stopping = false;
    for (const lane of this.lanes) this.schedule(lane, 0);
  }

  /** Looks for new events and checkpoints now (a checkpoint was just signed). */
  wake(): void {
    if (this.stopped) return;
    for (const lane of this.lanes) if (lane.failures === 0 && !lane.running) this.schedule(lane, 0);
  }

  /**
   * Stops the timers, waits for deliveries in flight, releases the leases and closes the
   * transports. With `flush`, first delivers what is there now (the last checkpoint, at shutdown)
   * to every stream that is not failing; what fails is left for the next start.
   */
  async stop(options: { flush?: boolean } = {}): Promise<void> {
    this.stopped = true;
    this.stopping = true;
    for (const lane of this.lanes) if (lane.timer) clearTimeout(lane.timer);
    await Promise.all(this.lanes.map((lane) => lane.running));
    if (options.flush) {
      this.stopping = false;
      for (const lane of this.lanes) {
        if (lane.failures > 0) continue;
        for (const stream of lane.streams) await this.drain(stream).catch((error: unknown) => this.options.onError(lane.name, error));
      }
      this.stopping = true;
    }
    for (const lane of this.lanes) {
      for (const stream of lane.streams) await releaseExportCursor(this.db, stream.cursor, this.owner).catch(() => {});
      await lane.streams[0]?.transport.close().catch(() => {});
    }
  }

  /** Exports everything there is now, once, and says how many records went out; throws the first failure. */
  async exportOnce(): Promise<number> {
    let total = 0;
    for (const lane of this.lanes) for (const stream of lane.streams) total += await this.drain(stream);
    return total;
  }

  private schedule(lane: Lane, delayMs: number): void {
    if (this.stopped) return;
    if (lane.timer) clearTimeout(lane.timer);
    lane.timer = setTimeout(() => {
      lane.timer = null;
      if (lane.running) return;
      lane.running = this.runLane(lane).finally(() => {
        lane.running = null;
      });
    }, delayMs);
    lane.timer.unref();
  }

  private async runLane(lane: Lane): Promise<void> {
    try {
      for (const stream of lane.streams) await this.drain(stream);
      lane.failures = 0;
      this.schedule(lane, this.settings.pollIntervalMs);
    } catch (error) {
      lane.failures += 1;
      this.options.onError(lane.name, error);
      const delay = Math.min(this.settings.backoffMaxMs, this.settings.backoffMinMs * 2 ** Math.min(lane.failures - 1, 20));
      // Jitter, so replicas and sinks retrying together spread out.
      this.schedule(lane, delay / 2 + Math.random() * (delay / 2));
    }
  }

  /** Sends batches until the stream is caught up (or another process holds it). */
  private async drain(stream: Stream): Promise<number> {
    let total = 0;
    for (;;) {
      if (this.stopping) return total;
      const sent = await this.deliverBatch(stream).catch(async (error: unknown) => {
        await noteExportError(this.db, stream.cursor, error instanceof Error ? error.message : String(error)).catch(() => {});
        throw error;
      });
      total += sent.count;
      if (!sent.more) return total;
    }
  }

  private async deliverBatch(stream: Stream): Promise<{ count: number; more: boolean }> {
    const position = await claimExportCursor(this.db, stream.cursor, this.owner, Math.max(30_000, this.settings.timeoutMs * 3));
    if (!position) return { count: 0, more: false };
    let records: ExportRecord[];
    let last: { seq: number; hash: string };
    if (stream.kind === 'events') {
      const rows = await fetchAuditEventRows(this.db, position.seq, stream.batch, MAX_EVENT_BYTES);
      if (rows.length === 0) return { count: 0, more: false };
      // NB. The chain must go on from what this sink already has: if not, the log was cut back or
      // rewritten after it was exported, and sending the new version would hide that.
      if (rows[0]!.seq !== position.seq + 1 || rows[0]!.prev_hash !== position.hash) {
        throw new Error(
          `the audit chain no longer continues from the last exported event (seq ${position.seq}, hash ${position.hash.slice(0, 16)}…): events were removed or rewritten after export; run lapse audit verify --witness against this sink's copy`,
        );
      }
      records = rows.map((row) => {
        const chained = { seq: row.seq, hash: row.hash, prevHash: row.prev_hash, payload: row.payload };
        return { line: formatEvent(stream.format, chained, this.format), kind: 'event', seq: row.seq, hash: row.hash, at: atOf(row.payload) };
      });
      last = rows.at(-1)!;
    } else {
      const checkpoints = await listAuditCheckpointsAfter(this.db, position.seq, stream.batch);
      if (checkpoints.length === 0) return { count: 0, more: false };
      records = checkpoints.map((c) => {
        const published = { seq: c.seq, hash: c.hash, keyId: c.key_id, signature: c.signature, at: c.created_at.toISOString() };
        return { line: formatCheckpoint(stream.format, published, this.format), kind: 'checkpoint', seq: c.seq, hash: c.hash, at: published.at };
      });
      last = checkpoints.at(-1)!;
    }
    await stream.transport.send(records, AbortSignal.timeout(this.settings.timeoutMs));
    const moved = await advanceExportCursor(this.db, stream.cursor, this.owner, position.seq, { seq: last.seq, hash: last.hash }, records.length);
    return { count: records.length, more: moved && records.length === stream.batch };
  }
}

/** The event's `at` without a full parse (canonical JSON: the first "at" key is the top-level one, as "action" and "actor" hold strings). */
function atOf(payload: string): string {
  const match = /"at":"([^"]{10,40})"/.exec(payload);
  return match?.[1] ?? new Date(0).toISOString();
}
