import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { SeverityNumber } from '@opentelemetry/api-logs';
import { OTLPLogExporter } from '@opentelemetry/exporter-logs-otlp-http';
import { LoggerProvider, type LogRecordProcessor, type ReadableLogRecord, type SdkLogRecord } from '@opentelemetry/sdk-logs';
import type { AuditTransport, ExportRecord } from './export-transports.js';

export interface SplunkHecTransportSettings {
  readonly type: 'splunk-hec';
  /** The collector's base URL (https://splunk.example:8088); /services/collector/event is appended. */
  readonly url: string;
  readonly token: string;
  readonly ca?: string;
  readonly index?: string;
  readonly sourcetype: string;
  readonly hostname: string;
}

/** Responses are read up to this much: a HEC answer is a line of JSON. */
const MAX_RESPONSE_BYTES = 64 * 1024;

/**
 * Splunk HTTP Event Collector: a batch is one POST of concatenated event objects with
 * `Authorization: Splunk <token>`; HTTP 200 with `{"code":0}` means indexed (or queued to be).
 */
export class SplunkHecTransport implements AuditTransport {
  private readonly endpoint: URL;

  constructor(private readonly settings: SplunkHecTransportSettings) {
    this.endpoint = new URL('services/collector/event', settings.url.endsWith('/') ? settings.url : `${settings.url}/`);
  }

  async send(records: readonly ExportRecord[], signal: AbortSignal): Promise<void> {
    const { index, sourcetype, hostname } = this.settings;
    const body = records
      .map((r) => {
        // JSON formats go as objects (searchable fields); text formats (CEF, syslog) as strings.
        const event = r.line.startsWith('{') ? r.line : JSON.stringify(r.line);
        const time = (Date.parse(r.at) / 1000).toFixed(3);
        return `{"time":${time},"host":${JSON.stringify(hostname)},"source":"lapse","sourcetype":${JSON.stringify(sourcetype)}${index ? `,"index":${JSON.stringify(index)}` : ''},"event":${event}}`;
      })
      .join('\n');
    const { status, text } = await post(
      this.endpoint,
      body,
      { Authorization: `Splunk ${this.settings.token}`, 'Content-Type': 'application/json' },
      this.settings.ca,
      signal,
    );
    let code: unknown;
    try {
      code = (JSON.parse(text) as { code?: unknown }).code;
    } catch {
      code = undefined;
    }
    if (status !== 200 || code !== 0) {
      // NB. Never the token: the answer's text only, bounded.
      throw new Error(`Splunk HEC ${this.endpoint.origin} answered HTTP ${status}: ${text.slice(0, 300)}`);
    }
  }

  async close(): Promise<void> {}
}

function post(url: URL, body: string, headers: Record<string, string>, ca: string | undefined, signal: AbortSignal): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const request = (url.protocol === 'https:' ? httpsRequest : httpRequest)(
      url,
      { method: 'POST', headers: { ...headers, 'Content-Length': Buffer.byteLength(body) }, signal, ...(ca ? { ca } : {}) },
      (response) => {
        const chunks: Buffer[] = [];
        let size = 0;
        response.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size <= MAX_RESPONSE_BYTES) chunks.push(chunk);
        });
        response.on('end', () => resolve({ status: response.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
        response.on('error', reject);
      },
    );
    request.on('error', (error) => reject(new Error(`${url.origin}: ${error.message}`)));
    request.end(body);
  });
}

export interface OtlpTransportSettings {
  readonly type: 'otlp-http';
  /** The logs endpoint (http://collector:4318/v1/logs). */
  readonly url: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly timeoutMs: number;
}

/** Collects what the logger emits, so a batch can be exported and its outcome awaited. */
class CollectingProcessor implements LogRecordProcessor {
  records: ReadableLogRecord[] = [];
  onEmit(record: SdkLogRecord): void {
    this.records.push(record);
  }
  async forceFlush(): Promise<void> {}
  async shutdown(): Promise<void> {}
}

/**
 * OpenTelemetry logs over OTLP/HTTP (JSON) with the official exporter. Records are exported
 * directly, not through a batch processor, because a batch processor reports failures to a
 * global handler and the exporter must know whether to move its cursor.
 */
export class OtlpTransport implements AuditTransport {
  private readonly exporter: OTLPLogExporter;
  private readonly processor = new CollectingProcessor();
  private readonly provider: LoggerProvider;

  constructor(settings: OtlpTransportSettings) {
    this.exporter = new OTLPLogExporter({ url: settings.url, headers: { ...settings.headers }, timeoutMillis: settings.timeoutMs });
    this.provider = new LoggerProvider({ processors: [this.processor] });
  }

  async send(records: readonly ExportRecord[]): Promise<void> {
    const logger = this.provider.getLogger('lapse.audit');
    this.processor.records = [];
    for (const r of records) {
      const high = / (?:<8[0-4]>|severity_id":4)/.test(r.line);
      logger.emit({
        timestamp: new Date(r.at),
        severityNumber: high ? SeverityNumber.WARN : SeverityNumber.INFO,
        severityText: high ? 'WARN' : 'INFO',
        eventName: r.kind === 'event' ? 'lapse.audit.event' : 'lapse.audit.checkpoint',
        body: r.line,
        attributes: { 'lapse.audit.seq': r.seq, 'lapse.audit.hash': r.hash, 'lapse.audit.kind': r.kind },
      });
    }
    const batch = this.processor.records;
    this.processor.records = [];
    await new Promise<void>((resolve, reject) => {
      this.exporter.export(batch, (result) => {
        if (result.code === 0) resolve();
        else reject(new Error(`OTLP export failed: ${result.error?.message ?? 'unknown error'}`));
      });
    });
  }

  async close(): Promise<void> {
    await this.exporter.shutdown();
    await this.provider.shutdown();
  }
}
