import type { KeyObject } from 'node:crypto';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { trustedCheckpointKeys } from '../../audit/index.js';
import { REPORT_KINDS, reportCsv, reportPdf, type Engine } from '../../engine/index.js';
import { callerOf } from '../authorization.js';
import { problemSchema } from '../problem.js';

/** A day (`2026-07-01`, midnight UTC) or an instant (`2026-07-01T12:00:00Z`). */
const instant = z
  .string()
  .max(40)
  .regex(
    /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?(Z|[+-]\d{2}:\d{2}))?$/,
    'write a date (2026-07-01) or an ISO 8601 instant with its offset (2026-07-01T12:00:00Z)',
  )
  .transform((value, ctx) => {
    const date = new Date(value.length === 10 ? `${value}T00:00:00Z` : value);
    if (Number.isNaN(date.getTime())) {
      ctx.addIssue({ code: 'custom', message: `${value} is not a date` });
      return z.NEVER;
    }
    return date;
  });

const query = z.object({ from: instant, to: instant, format: z.enum(['csv', 'pdf']).default('csv') }).strict();

/**
 * `GET /api/v1/reports/:kind`: compliance evidence (docs/compliance.md) as CSV or PDF, for admins
 * and auditors. Each report is audited (`report.generated`).
 */
export function reportRoutes(engine: Engine, checkpointKeys?: readonly KeyObject[]): FastifyPluginAsyncZod {
  return async (app) => {
    app.get(
      '/api/v1/reports/:kind',
      {
        config: {
          auth: {
            scope: 'read',
            role: 'reader',
            refused: {
              action: 'report.refused',
              message: (who) => `${who.id} may not read compliance reports`,
              hint: 'Admins and auditors (roles in lapse.yaml) read compliance reports.',
            },
          },
        },
        schema: {
          tags: ['reviews'],
          summary: 'A compliance report over a period: CSV, or PDF with a cover page (audit head, signed checkpoint, verification, config version)',
          security: [{ bearer: [] }],
          params: z.object({ kind: z.enum(REPORT_KINDS, { message: `the report kinds are ${REPORT_KINDS.join(', ')}` }) }).strict(),
          querystring: query,
          response: { 200: z.string().describe('text/csv or application/pdf'), 400: problemSchema, 401: problemSchema, 403: problemSchema },
        },
      },
      async (request, reply) => {
        const { principal } = callerOf(request);
        const { kind } = request.params;
        const { from, to, format } = request.query;
        const publicKeys = checkpointKeys ?? trustedCheckpointKeys({ signingKeyPem: engine.config.audit.signingKeyPem }).keys;
        const report = await engine.complianceReport({ kind, from, to, by: principal.id, publicKeys });
        const day = (d: Date) => d.toISOString().slice(0, 10);
        const body = format === 'pdf' ? Buffer.from(await reportPdf(report)) : Buffer.from(reportCsv(report), 'utf8');
        reply
          .type(format === 'pdf' ? 'application/pdf' : 'text/csv; charset=utf-8')
          .header('content-disposition', `attachment; filename="lapse-${kind}-${day(from)}-${day(to)}.${format}"`)
          .header('cache-control', 'no-store');
        return reply.send(body as unknown as string);
      },
    );
  };
}
