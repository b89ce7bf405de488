/**
 * The audit export settings as lapse.yaml resolves them (config/) and the exporter uses them
 * (audit/): sinks stream the chain's events (and its signed checkpoints) to a SIEM; witnesses keep
 * the signed checkpoints somewhere the database's owner cannot rewrite.
 */
export const AUDIT_EXPORT_FORMATS = ['jsonl', 'ocsf', 'cef', 'syslog'] as const;
export type AuditExportFormat = (typeof AUDIT_EXPORT_FORMATS)[number];

export type AuditTransportSettings =
  | { readonly type: 'file'; readonly path: string; readonly maxBytes: number; readonly keep: number }
  | {
      readonly type: 'syslog-tls';
      readonly host: string;
      readonly port: number;
      readonly ca?: string;
      readonly cert?: string;
      readonly key?: string;
      readonly serverName?: string;
    }
  | { readonly type: 'splunk-hec'; readonly url: string; readonly token: string; readonly ca?: string; readonly index?: string; readonly sourcetype: string }
  | { readonly type: 'otlp-http'; readonly url: string; readonly headers: Readonly<Record<string, string>> };

export interface AuditSinkSettings {
  readonly name: string;
  readonly format: AuditExportFormat;
  readonly transport: AuditTransportSettings;
  /** Events per delivery. */
  readonly batchSize: number;
  /** Also publish each signed checkpoint to this sink (a witness). */
  readonly checkpoints: boolean;
}

export type AuditWitnessSettings =
  | { readonly name: string; readonly type: 'file'; readonly path: string }
  | { readonly name: string; readonly type: 'tsa'; readonly url: string; readonly dir: string; readonly ca?: string };

export interface AuditExportSettings {
  readonly sinks: readonly AuditSinkSettings[];
  readonly witnesses: readonly AuditWitnessSettings[];
  /** Longest wait between looks for new events when caught up. */
  readonly pollIntervalMs: number;
  /** Deadline of one delivery. */
  readonly timeoutMs: number;
  /** Retry backoff bounds of a failing sink or witness. */
  readonly backoffMinMs: number;
  readonly backoffMaxMs: number;
}
