import { Readable } from 'node:stream';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { boundedText } from '../../domain/text.js';
import { type AuditEvent, type AuditFilter } from '../../audit/index.js';
import { parseDuration } from '../../domain/duration.js';
import { LapseError } from '../../domain/errors.js';
import type { Engine } from '../../engine/index.js';
import { problemSchema } from '../problem.js';
import { auditEventView, decodeCursor, encodeCursor, pageOf, pageQuery, toAuditEventView } from '../views.js';
import { callerOf, type RouteAuth } from '../authorization.js';

const errors = { 400: problemSchema, 401: problemSchema, 403: problemSchema, 404: problemSchema };
const when = boundedText(40).describe('An ISO-8601 time, or a duration ago such as 1h or 7d');
const filters = {
  action: z
    .string()
    .max(100)
    .regex(/^[a-z_.]+\*?$/, 'is an action like grant.revoked, or a family like grant.*')
    .optional(),
  actor: boundedText(256).optional(),
  subject: boundedText(64).optional(),
  since: when.optional(),
  until: when.optional(),
};

/** "1h" means an hour ago; anything else must be an ISO-8601 time. */
function parseWhen(text: string | undefined, where: string): Date | undefined {
  if (text === undefined) return undefined;
  if (/^\d+[a-z]/.test(text)) return new Date(Date.now() - parseDuration(text, where));
  const date = new Date(text);
  if (Number.isNaN(date.getTime()))
    throw new LapseError('validation_failed', `${where}: "${text.slice(0, 40)}" is neither a time nor a duration`, {
      where,
      hint: 'Write 2026-11-23T10:00:00Z or 24h.',
    });
  return date;
}

function filterOf(query: {
  action?: string | undefined;
  actor?: string | undefined;
  subject?: string | undefined;
  since?: string | undefined;
  until?: string | undefined;
}): Omit<AuditFilter, 'limit'> {
  const since = parseWhen(query.since, 'since');
  const until = parseWhen(query.until, 'until');
  return {
    ...(query.action ? { action: query.action } : {}),
    ...(query.actor ? { actor: query.actor } : {}),
    ...(query.subject ? { subjects: [query.subject] } : {}),
    ...(since ? { since } : {}),
    ...(until ? { until } : {}),
  };
}

/** A CSV cell: quoted, and never read as a formula by a spreadsheet. */
function csvCell(value: string): string {
  const safe = /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
  return `"${safe.replace(/"/g, '""')}"`;
}

function csvLine(event: AuditEvent): string {
  return (
    [String(event.seq), event.at, event.action, event.actor, event.subject ?? '', event.data ? JSON.stringify(event.data) : ''].map(csvCell).join(',') + '\r\n'
  );
}

/** Who reads the audit log: admins and auditors (everyone else: forbidden, and audited). */
const readerOnly: RouteAuth = {
  scope: 'read',
  role: 'reader',
  refused: {
    action: 'audit.read_refused',
    message: 'only admins and auditors may read the audit log',
    hint: 'Ask an auditor; roles come from roles.auditors in the config.',
  },
};

/** Audit search and export: admins and auditors only (everyone else: forbidden, and audited). */
export function auditRoutes(engine: Engine): FastifyPluginAsyncZod {
  return async (app) => {
    app.get(
      '/api/v1/audit',
      {
        config: { auth: readerOnly },
        schema: {
          tags: ['audit'],
          summary: 'Search audit events, newest first',
          security: [{ bearer: [] }],
          querystring: z.object({ ...filters, ...pageQuery }).strict(),
          response: { 200: pageOf(auditEventView), ...errors },
        },
      },
      async (request) => {
        const { limit, cursor } = request.query;
        const before = decodeCursor(cursor);
        const events = await engine.read.auditEvents({ ...filterOf(request.query), ...(before ? { beforeSeq: Number(before) } : {}), limit: limit + 1 });
        const page = events.slice(0, limit);
        return { items: page.map(toAuditEventView), nextCursor: events.length > limit ? encodeCursor(page.at(-1)!.seq) : null };
      },
    );

    app.get(
      '/api/v1/audit/export',
      {
        config: { auth: readerOnly },
        schema: {
          tags: ['audit'],
          summary: 'Export audit events, oldest first, as JSON lines (the hashed payloads, verifiable) or CSV',
          security: [{ bearer: [] }],
          querystring: z.object({ ...filters, format: z.enum(['jsonl', 'csv']).default('jsonl') }).strict(),
          response: { 200: z.string().describe('application/x-ndjson or text/csv, streamed'), ...errors },
        },
      },
      async (request, reply) => {
        const caller = callerOf(request);
        const filter = filterOf(request.query);
        const csv = request.query.format === 'csv';
        await engine.recordSecurityEvent({
          action: 'audit.exported',
          actor: caller.principal.id,
          data: { format: request.query.format, filter: { ...request.query } },
        });
        async function* lines() {
          if (csv) yield 'seq,at,action,actor,subject,data\r\n';
          let afterSeq = 0;
          for (;;) {
            const page = await engine.read.auditEvents({ ...filter, ascending: true, afterSeq, limit: 2_000 });
            if (page.length === 0) return;
            yield page.map((event) => (csv ? csvLine(event) : `${JSON.stringify(event)}\n`)).join('');
            afterSeq = page.at(-1)!.seq;
          }
        }
        const stamp = new Date().toISOString().replace(/[:.]/g, '-');
        reply
          .type(csv ? 'text/csv; charset=utf-8' : 'application/x-ndjson')
          .header('content-disposition', `attachment; filename="lapse-audit-${stamp}.${csv ? 'csv' : 'jsonl'}"`)
          .header('cache-control', 'no-store');
        return reply.send(Readable.from(lines()) as unknown as string);
      },
    );
  };
}
