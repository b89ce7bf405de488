import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { ALERT_SEVERITIES, ALERT_STATUSES, alertActionInput } from '../../domain/anomalies.js';
import { anyId } from '../../domain/input-schemas.js';
import type { Alert, Engine } from '../../engine/index.js';
import { callerOf } from '../authorization.js';
import { problemSchema } from '../problem.js';

const alertsQuery = z
  .object({
    status: z.enum([...ALERT_STATUSES, 'unresolved']).optional(),
    limit: z.coerce.number().int().min(1).max(500).default(100),
    before: anyId.optional(),
  })
  .strict();

const alertSchema = z.object({
  id: z.string(),
  kind: z.string(),
  severity: z.enum(ALERT_SEVERITIES),
  status: z.enum(ALERT_STATUSES),
  principalId: z.string().nullable(),
  subject: z.string().nullable(),
  summary: z.string(),
  detail: z.record(z.string(), z.unknown()),
  occurrences: z.number().int(),
  raisedAt: z.string(),
  lastSeenAt: z.string(),
  acknowledgedAt: z.string().nullable(),
  acknowledgedBy: z.string().nullable(),
  resolvedAt: z.string().nullable(),
  resolvedBy: z.string().nullable(),
  note: z.string().nullable(),
});

function alertOut(alert: Alert): z.infer<typeof alertSchema> {
  const iso = (date: Date | null) => date?.toISOString() ?? null;
  return {
    ...alert,
    detail: { ...alert.detail },
    raisedAt: alert.raisedAt.toISOString(),
    lastSeenAt: alert.lastSeenAt.toISOString(),
    acknowledgedAt: iso(alert.acknowledgedAt),
    resolvedAt: iso(alert.resolvedAt),
  };
}

/**
 * Anomaly alerts (docs/monitoring.md#alerts). They name people and what they did, so only admins
 * and auditors read them; only admins (with an `admin`-scoped credential) acknowledge or resolve.
 */
export function alertRoutes(engine: Engine): FastifyPluginAsyncZod {
  return async (app) => {
    app.get(
      '/api/v1/alerts',
      {
        config: {
          auth: {
            scope: 'read',
            role: 'reader',
            refused: {
              action: 'alerts.list_refused',
              message: (who) => `${who.id} may not read alerts`,
              hint: 'Admins and auditors (roles in lapse.yaml) read alerts.',
            },
          },
        },
        schema: {
          tags: ['monitoring'],
          summary: 'Anomaly alerts, newest first',
          security: [{ bearer: [] }],
          querystring: alertsQuery,
          response: { 200: z.object({ alerts: z.array(alertSchema) }), 400: problemSchema, 401: problemSchema, 403: problemSchema },
        },
      },
      async (request) => ({ alerts: (await engine.listAlerts(request.query)).map(alertOut) }),
    );

    app.post(
      '/api/v1/alerts/:id',
      {
        config: {
          auth: {
            scope: 'admin',
            role: 'admin',
            refused: {
              action: 'alerts.change_refused',
              message: (who) => `${who.id} may not act on alerts`,
              hint: 'Admins (roles.admins) acknowledge and resolve alerts, with an admin-scoped credential.',
            },
          },
        },
        schema: {
          tags: ['monitoring'],
          summary: 'Acknowledge or resolve an alert',
          security: [{ bearer: [] }],
          params: z.object({ id: anyId }).strict(),
          body: alertActionInput,
          response: {
            200: z.object({ alert: alertSchema }),
            400: problemSchema,
            401: problemSchema,
            403: problemSchema,
            404: problemSchema,
            409: problemSchema,
          },
        },
      },
      async (request) => {
        const { principal } = callerOf(request);
        const alert = await engine.changeAlert({ alertId: request.params.id, by: principal, ...request.body });
        return { alert: alertOut(alert) };
      },
    );
  };
}
