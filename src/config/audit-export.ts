import { isAbsolute } from 'node:path';
import { z } from 'zod';
import { AUDIT_EXPORT_FORMATS, type AuditExportSettings, type AuditTransportSettings } from '../domain/audit-export.js';
import { boundedText } from '../domain/text.js';
import { duration, name, text } from './schema-parts.js';
import { resolveReference, type SecretContext } from './secrets.js';

/**
 * `audit.sinks`, `audit.witnesses` and `audit.export` in lapse.yaml (docs/monitoring.md): where the
 * audit chain and its signed checkpoints are streamed. Secrets (the HEC token, a TLS client key)
 * only as references.
 */
const host = z
  .string()
  .min(1)
  .max(253)
  .regex(/^[A-Za-z0-9.:[\]-]+$/, 'write a host name or an IP address');
const path = boundedText(1024)
  .min(1)
  .refine((p) => isAbsolute(p), 'write an absolute path');
const httpUrl = z.url({ protocol: /^https?$/, message: 'write an http(s) URL' }).max(2048);

const transport = z.discriminatedUnion('type', [
  z
    .object({
      type: z.literal('file'),
      path,
      maxBytes: z
        .number()
        .int()
        .min(4096)
        .max(1 << 40)
        .default(100 * 1024 * 1024),
      keep: z.number().int().min(1).max(1000).default(10),
    })
    .strict(),
  z
    .object({
      type: z.literal('syslog-tls'),
      host,
      port: z.number().int().min(1).max(65535).default(6514),
      ca: text(65536).optional(),
      cert: text(65536).optional(),
      key: text(65536).optional(),
      serverName: host.optional(),
    })
    .strict(),
  z
    .object({
      type: z.literal('splunk-hec'),
      url: httpUrl,
      token: text(1024),
      ca: text(65536).optional(),
      index: boundedText(80).optional(),
      sourcetype: boundedText(80).default('lapse:audit'),
    })
    .strict(),
  z
    .object({
      type: z.literal('otlp-http'),
      url: httpUrl,
      headers: z
        .record(
          z
            .string()
            .max(128)
            .regex(/^[A-Za-z0-9-]+$/, 'header names use letters, digits and "-"'),
          text(4096),
        )
        .default({}),
    })
    .strict(),
]);

const sink = z
  .object({
    name: name('sink'),
    format: z.enum(AUDIT_EXPORT_FORMATS),
    transport,
    batchSize: z.number().int().min(1).max(10_000).default(500),
    checkpoints: z.boolean().default(true),
  })
  .strict();

const witness = z.discriminatedUnion('type', [
  z.object({ name: name('witness'), type: z.literal('file'), path }).strict(),
  z.object({ name: name('witness'), type: z.literal('tsa'), url: httpUrl, dir: path, ca: text(65536).optional() }).strict(),
]);

export const auditExportSchema = {
  sinks: z.array(sink).max(20).default([]),
  witnesses: z.array(witness).max(20).default([]),
  export: z
    .object({
      pollInterval: duration.prefault('1s'),
      timeout: duration.prefault('10s'),
      backoff: z
        .object({ min: duration.prefault('1s'), max: duration.prefault('5m') })
        .strict()
        .prefault({}),
    })
    .strict()
    .prefault({}),
};

type Parsed = { [K in keyof typeof auditExportSchema]: z.output<(typeof auditExportSchema)[K]> };

/** Resolves secret references and checks what zod cannot (unique names, secrets not inline, PEMs). */
export function resolveAuditExport(parsed: Parsed, secrets: SecretContext): AuditExportSettings {
  const problems = secrets.problems;
  const unique = (names: string[], where: string) =>
    names.forEach((n, i) => {
      if (names.indexOf(n) !== i) problems.push(`audit.${where}[${i}].name: "${n}" is used twice; names must be unique`);
    });
  unique(
    parsed.sinks.map((s) => s.name),
    'sinks',
  );
  unique(
    parsed.witnesses.map((w) => w.name),
    'witnesses',
  );
  const secret = (value: string, where: string) => {
    if (!value.startsWith('${')) problems.push(`${where}: give it as a reference (\${env:NAME} or \${file:path}), not inline`);
    return resolveReference(value, where, secrets);
  };
  const pem = (value: string | undefined, where: string, kind: 'CERTIFICATE' | 'PRIVATE KEY') => {
    if (value === undefined) return undefined;
    const resolved = kind === 'PRIVATE KEY' ? secret(value, where) : resolveReference(value, where, secrets);
    if (resolved && !resolved.includes(kind)) problems.push(`${where}: not a PEM ${kind.toLowerCase()}; give \${file:/path/file.pem}`);
    return resolved || undefined;
  };
  const sinks = parsed.sinks.map((s, i) => {
    const where = `audit.sinks[${i}].transport`;
    const t = s.transport;
    let settings: AuditTransportSettings;
    if (t.type === 'syslog-tls') {
      if ((t.cert === undefined) !== (t.key === undefined)) problems.push(`${where}: give both cert and key for a client certificate, or neither`);
      settings = {
        ...t,
        ca: pem(t.ca, `${where}.ca`, 'CERTIFICATE'),
        cert: pem(t.cert, `${where}.cert`, 'CERTIFICATE'),
        key: pem(t.key, `${where}.key`, 'PRIVATE KEY'),
      };
    } else if (t.type === 'splunk-hec') {
      settings = { ...t, token: secret(t.token, `${where}.token`), ca: pem(t.ca, `${where}.ca`, 'CERTIFICATE') };
    } else if (t.type === 'otlp-http') {
      settings = { ...t, headers: Object.fromEntries(Object.entries(t.headers).map(([k, v]) => [k, resolveReference(v, `${where}.headers.${k}`, secrets)])) };
    } else {
      settings = t;
    }
    return { name: s.name, format: s.format, transport: settings, batchSize: s.batchSize, checkpoints: s.checkpoints };
  });
  const witnesses = parsed.witnesses.map((w, i) => (w.type === 'tsa' ? { ...w, ca: pem(w.ca, `audit.witnesses[${i}].ca`, 'CERTIFICATE') } : w));
  if (parsed.export.backoff.min > parsed.export.backoff.max) problems.push('audit.export.backoff: min must not exceed max');
  return {
    sinks,
    witnesses,
    pollIntervalMs: parsed.export.pollInterval,
    timeoutMs: parsed.export.timeout,
    backoffMinMs: parsed.export.backoff.min,
    backoffMaxMs: parsed.export.backoff.max,
  };
}
