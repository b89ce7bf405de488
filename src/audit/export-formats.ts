import { AUDIT_EXPORT_FORMATS, type AuditExportFormat } from '../domain/audit-export.js';
import type { AuditEvent } from './chain.js';

/**
 * How an audit event (and a signed checkpoint) is written for a SIEM. Every format carries the
 * event's chain seq and hash (and the exact hashed payload where the format has room for it), so
 * the SIEM copy can be deduplicated by hash and checked against the signed checkpoints.
 */
export const EXPORT_FORMATS = AUDIT_EXPORT_FORMATS;
export type ExportFormat = AuditExportFormat;

/** One chained event as read from the log: the stored bytes and its links. */
export interface ChainedEvent {
  readonly seq: number;
  readonly hash: string;
  readonly prevHash: string;
  /** The canonical JSON exactly as hashed. */
  readonly payload: string;
}

/** A signed checkpoint as published to sinks and witnesses. */
export interface PublishedCheckpoint {
  readonly seq: number;
  readonly hash: string;
  readonly keyId: string;
  readonly signature: string;
  readonly at: string;
}

export interface FormatOptions {
  /** The HOSTNAME of syslog lines and the host of OCSF/CEF records. */
  readonly hostname: string;
  /** Syslog facility (0-23); default 10 (authpriv). */
  readonly facility?: number;
  /** Product version named in CEF headers and OCSF metadata. */
  readonly productVersion?: string;
}

/** RFC 5612's documentation enterprise number: Lapse has no IANA Private Enterprise Number of its own. */
export const SYSLOG_SD_ID = 'lapse@32473';
const OCSF_VERSION = '1.1.0';

/** Severity as the formats count it: high for refusals, failures and break-glass; else informational. */
function isHigh(event: AuditEvent): boolean {
  return event.data?.severity === 'high' || /(?:refused|failed|force_closed|locked)$/.test(event.action) || event.action.startsWith('break_glass.');
}

export function formatEvent(format: ExportFormat, chained: ChainedEvent, options: FormatOptions): string {
  switch (format) {
    case 'jsonl':
      return jsonLine(chained);
    case 'ocsf':
      return JSON.stringify(ocsfEvent(chained, options));
    case 'cef':
      return cefLine(chained, options);
    case 'syslog':
      return syslogLine(chained, options);
  }
}

export function formatCheckpoint(format: ExportFormat, checkpoint: PublishedCheckpoint, options: FormatOptions): string {
  const json = checkpointJson(checkpoint);
  switch (format) {
    case 'jsonl':
      return `{"type":"checkpoint","checkpoint":${json}}`;
    case 'ocsf':
      return JSON.stringify({
        ...ocsfBase(options, 'lapse.audit.checkpoint', checkpoint.at, 1),
        message: `audit checkpoint at seq ${checkpoint.seq}`,
        unmapped: { lapse_checkpoint: checkpoint },
      });
    case 'cef':
      return cef(options, 'audit.checkpoint', `audit checkpoint at seq ${checkpoint.seq}`, 3, [
        ['rt', String(Date.parse(checkpoint.at))],
        ['cn1Label', 'seq'],
        ['cn1', String(checkpoint.seq)],
        ['cs1Label', 'chainHash'],
        ['cs1', checkpoint.hash],
        ['cs2Label', 'keyId'],
        ['cs2', checkpoint.keyId],
        ['cs3Label', 'signature'],
        ['cs3', checkpoint.signature],
      ]);
    case 'syslog':
      return syslog(
        options,
        6,
        checkpoint.at,
        'audit.checkpoint',
        [
          ['seq', String(checkpoint.seq)],
          ['hash', checkpoint.hash],
          ['keyId', checkpoint.keyId],
          ['signature', checkpoint.signature],
        ],
        json,
      );
  }
}

/** The JSON-lines record: the payload as it was hashed, byte for byte, with its links. */
function jsonLine(chained: ChainedEvent): string {
  return `{"type":"event","seq":${chained.seq},"hash":"${chained.hash}","prev_hash":"${chained.prevHash}","event":${chained.payload}}`;
}

function checkpointJson(checkpoint: PublishedCheckpoint): string {
  return JSON.stringify({ seq: checkpoint.seq, hash: checkpoint.hash, keyId: checkpoint.keyId, signature: checkpoint.signature, at: checkpoint.at });
}

// ---- OCSF ----

/** class_uid and activity_id per action; everything else is a Base Event (class 0, activity 99). */
function ocsfClass(action: string): { category: number; class: number; activity: number; name: string } {
  if (action === 'grant.activated') return { category: 3, class: 3005, activity: 1, name: 'User Access Management: Assign Privileges' };
  if (/^grant\.(revoked|expired|released|force_closed)$/.test(action))
    return { category: 3, class: 3005, activity: 2, name: 'User Access Management: Revoke Privileges' };
  if (action === 'auth.login' || action === 'auth.login_failed' || action === 'auth.oidc_failed')
    return { category: 3, class: 3002, activity: 1, name: 'Authentication: Logon' };
  if (action === 'auth.logout' || action === 'auth.logout_all') return { category: 3, class: 3002, activity: 2, name: 'Authentication: Logoff' };
  if (action === 'user.created') return { category: 3, class: 3001, activity: 1, name: 'Account Change: Create' };
  if (action === 'user.password_set') return { category: 3, class: 3001, activity: 3, name: 'Account Change: Password Change' };
  if (action === 'user.disabled') return { category: 3, class: 3001, activity: 5, name: 'Account Change: Disable' };
  return { category: 0, class: 0, activity: 99, name: 'Base Event: Other' };
}

function ocsfBase(options: FormatOptions, uid: string, at: string, severity: number) {
  return {
    metadata: { version: OCSF_VERSION, product: { name: 'Lapse', vendor_name: 'Lapse', version: options.productVersion ?? '1' }, uid },
    time: Date.parse(at),
    severity_id: severity,
    category_uid: 0,
    class_uid: 0,
    activity_id: 99,
    type_uid: 99,
    device: { hostname: options.hostname },
  };
}

function ocsfEvent(chained: ChainedEvent, options: FormatOptions) {
  const event = JSON.parse(chained.payload) as AuditEvent;
  const kind = ocsfClass(event.action);
  const failed = /(?:refused|failed)$/.test(event.action);
  const data = event.data ?? {};
  const user = typeof data.principal === 'string' ? data.principal : event.action.startsWith('auth.') ? event.actor : undefined;
  return {
    ...ocsfBase(options, event.id, event.at, isHigh(event) ? 4 : 1),
    metadata: { ...ocsfBase(options, event.id, event.at, 1).metadata, sequence: chained.seq, event_code: event.action },
    category_uid: kind.category,
    class_uid: kind.class,
    activity_id: kind.activity,
    // NB. type_uid = class_uid * 100 + activity_id, as OCSF defines it.
    type_uid: kind.class * 100 + kind.activity,
    type_name: kind.name,
    status_id: failed ? 2 : 1,
    status: failed ? 'Failure' : 'Success',
    message: event.action,
    actor: { user: { name: event.actor } },
    ...(user !== undefined ? { user: { name: user } } : {}),
    ...(typeof data.entitlement === 'string' ? { privileges: [data.entitlement] } : {}),
    ...(typeof data.ip === 'string' ? { src_endpoint: { ip: data.ip } } : {}),
    raw_data: chained.payload,
    unmapped: { lapse: { seq: chained.seq, hash: chained.hash, prev_hash: chained.prevHash, subject: event.subject ?? null } },
  };
}

// ---- CEF ----

const cefHeader = (value: string) =>
  value
    .replace(/\\/g, '\\\\')
    .replace(/\|/g, '\\|')
    .replace(/[\r\n]+/g, ' ');
const cefValue = (value: string) =>
  value
    .replace(/\\/g, '\\\\')
    .replace(/=/g, '\\=')
    .replace(/\r\n|\r|\n/g, '\\n');

function cef(options: FormatOptions, signature: string, name: string, severity: number, extension: [string, string][]): string {
  const header = ['CEF:0', 'Lapse', 'Lapse', options.productVersion ?? '1', signature, name, String(severity)].map((v, i) => (i === 0 ? v : cefHeader(v)));
  return `${header.join('|')}|${[...extension, ['dvchost', options.hostname] as [string, string]].map(([k, v]) => `${k}=${cefValue(v)}`).join(' ')}`;
}

function cefLine(chained: ChainedEvent, options: FormatOptions): string {
  const event = JSON.parse(chained.payload) as AuditEvent;
  const ext: [string, string][] = [
    ['rt', String(Date.parse(event.at))],
    ['externalId', event.id],
    ['suser', event.actor],
  ];
  const data = event.data ?? {};
  if (typeof data.principal === 'string') ext.push(['duser', data.principal]);
  if (typeof data.ip === 'string') ext.push(['src', data.ip]);
  ext.push(['cn1Label', 'seq'], ['cn1', String(chained.seq)], ['cs1Label', 'chainHash'], ['cs1', chained.hash]);
  if (event.subject !== undefined) ext.push(['cs2Label', 'subject'], ['cs2', event.subject]);
  if (typeof data.entitlement === 'string') ext.push(['cs3Label', 'entitlement'], ['cs3', data.entitlement]);
  ext.push(['msg', chained.payload]);
  return cef(options, event.action, event.action, isHigh(event) ? 7 : 3, ext);
}

// ---- RFC 5424 syslog ----

const sdValue = (value: string) => value.replace(/[\\"\]]/g, '\\$&');
/** PRINTUSASCII without space, at most 32: RFC 5424's MSGID. */
const msgId = (action: string) => action.replace(/[^\x21-\x7e]/g, '_').slice(0, 32);

function syslog(options: FormatOptions, severity: number, at: string, id: string, params: [string, string][], message: string): string {
  const pri = (options.facility ?? 10) * 8 + severity;
  const sd = `[${SYSLOG_SD_ID} ${params.map(([k, v]) => `${k}="${sdValue(v)}"`).join(' ')}]`;
  const host = options.hostname.replace(/[^\x21-\x7e]/g, '').slice(0, 255) || '-';
  return `<${pri}>1 ${at} ${host} lapse - ${msgId(id)} ${sd} ${message}`;
}

function syslogLine(chained: ChainedEvent, options: FormatOptions): string {
  const event = JSON.parse(chained.payload) as AuditEvent;
  const params: [string, string][] = [
    ['seq', String(chained.seq)],
    ['hash', chained.hash],
    ['id', event.id],
    ['actor', event.actor],
  ];
  if (event.subject !== undefined) params.push(['subject', event.subject]);
  // Severity: warning (4) for what a SIEM should look at, notice (5) otherwise.
  return syslog(options, isHigh(event) ? 4 : 5, event.at, event.action, params, chained.payload);
}
