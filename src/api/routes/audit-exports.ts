import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Engine } from '../../engine/index.js';
import { problemSchema } from '../problem.js';

const exportStatus = z.object({
  stream: z.string().describe('sink:NAME (events), sink-checkpoints:NAME or witness:NAME (signed checkpoints)'),
  kind: z.enum(['events', 'checkpoints']),
  seq: z.number().int().describe('the last event (or checkpoint) delivered; 0 before the first'),
  behind: z.number().int().describe('events (or checkpoints) not yet delivered'),
  lagSeconds: z.number().describe('age of the oldest event not yet delivered; 0 when caught up'),
  exportedAt: z.string().nullable(),
  exportedTotal: z.number().int(),
  failures: z.number().int().describe('failed deliveries since the last good one'),
  lastError: z.string().nullable(),
  lastErrorAt: z.string().nullable(),
});

/** `GET /api/v1/audit/exports`: where each audit sink and checkpoint witness stands (admins and auditors). */
export function auditExportRoutes(engine: Engine): FastifyPluginAsyncZod {
  return async (app) => {
    app.get(
      '/api/v1/audit/exports',
      {
        config: {
          auth: {
            scope: 'read',
            role: 'reader',
            refused: { message: 'only admins and auditors may see the audit exports', hint: 'Ask an auditor; roles come from roles.auditors in the config.' },
          },
        },
        schema: {
          tags: ['audit'],
          summary: 'Export lag of every audit sink and checkpoint witness (admins and auditors)',
          security: [{ bearer: [] }, { session: [] }],
          response: { 200: z.object({ exports: z.array(exportStatus) }), 401: problemSchema, 403: problemSchema },
        },
      },
      async () => ({ exports: await engine.read.auditExports() }),
    );
  };
}
