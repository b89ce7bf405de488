import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { anyId, resourceName } from '../../domain/input-schemas.js';
import { NOTIFICATION_EVENTS, preferencesInput } from '../../domain/notifications.js';
import { boundedText } from '../../domain/text.js';
import type { Engine } from '../../engine/index.js';
import { callerOf } from '../authorization.js';
import { problemSchema } from '../problem.js';

const deliveriesQuery = z
  .object({
    status: z.enum(['pending', 'sent', 'failed', 'skipped']).optional(),
    event: z.enum(NOTIFICATION_EVENTS).optional(),
    channel: resourceName.optional(),
    recipient: boundedText(400).optional(),
    subject: anyId.optional(),
    /** The last id of the previous page: the page after it. */
    before: anyId.optional(),
    limit: z.coerce.number().int().min(1).max(1000).default(100),
  })
  .strict();

const deliverySchema = z.object({
  id: z.string(),
  event: z.string(),
  subject: z.string().nullable(),
  channel: z.string(),
  recipient: z.string(),
  urgent: z.boolean(),
  status: z.enum(['pending', 'sent', 'failed', 'skipped']),
  attempts: z.number().int(),
  lastError: z.string().nullable(),
  createdAt: z.string(),
  sentAt: z.string().nullable(),
  finishedAt: z.string().nullable(),
});

const preferencesSchema = z.object({
  email: z.boolean(),
  quietHours: z.object({ start: z.string(), end: z.string() }).nullable(),
  timezone: z.string(),
});

const testBody = z
  .object({
    channel: resourceName,
    /** Where to send it; default: the caller's own address on record. */
    to: z.email().max(320).optional(),
  })
  .strict();

const admin = (action: string, what: string) => ({
  scope: 'admin' as const,
  role: 'admin' as const,
  refused: { action, message: (who: { id: string }) => `${who.id} may not ${what}`, hint: 'Only admins (roles.admins in lapse.yaml) do this.' },
});

/**
 * Notifications (docs/notifications.md): the outbox's deliveries for admins, a person's own
 * preferences, and a test message over a channel.
 */
export function notificationRoutes(engine: Engine): FastifyPluginAsyncZod {
  return async (app) => {
    app.get(
      '/api/v1/notifications/deliveries',
      {
        config: {
          auth: {
            scope: 'read',
            role: 'admin',
            refused: {
              action: 'notifications.list_refused',
              message: (who) => `${who.id} may not read notification deliveries`,
              hint: 'Only admins (roles.admins in lapse.yaml) see who was told what.',
            },
          },
        },
        schema: {
          tags: ['notifications'],
          summary: 'Notification deliveries, newest first: pending, sent, failed (with the last error) or skipped',
          security: [{ bearer: [] }],
          querystring: deliveriesQuery,
          response: {
            200: z.object({ deliveries: z.array(deliverySchema), next: z.string().nullable() }),
            400: problemSchema,
            401: problemSchema,
            403: problemSchema,
          },
        },
      },
      async (request) => {
        const { limit, ...filter } = request.query;
        const deliveries = await engine.notifications.deliveries({ ...filter, limit });
        const iso = (date: Date | null) => date?.toISOString() ?? null;
        return {
          deliveries: deliveries.map((d) => ({
            id: d.id,
            event: d.event,
            subject: d.subjectId,
            channel: d.channel,
            recipient: d.recipient,
            urgent: d.urgent,
            status: d.status,
            attempts: d.attempts,
            lastError: d.lastError,
            createdAt: d.createdAt.toISOString(),
            sentAt: iso(d.sentAt),
            finishedAt: iso(d.finishedAt),
          })),
          next: deliveries.length === limit ? (deliveries.at(-1)?.id ?? null) : null,
        };
      },
    );

    app.get(
      '/api/v1/notifications/channels',
      {
        config: {
          auth: {
            scope: 'read',
            role: 'admin',
            refused: {
              action: 'notifications.list_refused',
              message: (who) => `${who.id} may not read notification channels`,
              hint: 'Only admins (roles.admins in lapse.yaml) see the notification setup.',
            },
          },
        },
        schema: {
          tags: ['notifications'],
          summary: 'The notification channels in force: name and type (never their settings or secrets)',
          security: [{ bearer: [] }, { session: [] }],
          response: {
            200: z.object({ channels: z.array(z.object({ name: z.string(), type: z.string(), retryAttempts: z.number().int() })), rules: z.number().int() }),
            401: problemSchema,
            403: problemSchema,
          },
        },
      },
      async () => ({
        channels: [...engine.config.notifications.channels.values()].map((c) => ({ name: c.name, type: c.type, retryAttempts: c.retry.attempts })),
        rules: engine.config.notifications.rules.length,
      }),
    );

    app.post(
      '/api/v1/notifications/test',
      {
        config: { auth: admin('notifications.test_refused', 'send test notifications') },
        schema: {
          tags: ['notifications'],
          summary: 'Send a test message over a channel now, to an address or to your own',
          security: [{ bearer: [] }],
          body: testBody,
          response: {
            200: z.object({ channel: z.string(), to: z.string(), id: z.string() }),
            400: problemSchema,
            401: problemSchema,
            403: problemSchema,
            404: problemSchema,
            502: problemSchema,
          },
        },
      },
      async (request) => engine.notifications.sendTest(callerOf(request).principal, request.body.channel, request.body.to),
    );

    app.get(
      '/api/v1/me/notification-preferences',
      {
        config: { auth: { scope: 'read' } },
        schema: {
          tags: ['notifications'],
          summary: 'Your notification preferences: email on or off, quiet hours',
          security: [{ bearer: [] }],
          response: { 200: preferencesSchema, 401: problemSchema, 403: problemSchema },
        },
      },
      async (request) => engine.notifications.preferences(callerOf(request).principal.id),
    );

    app.put(
      '/api/v1/me/notification-preferences',
      {
        config: { auth: { scope: 'request' } },
        schema: {
          tags: ['notifications'],
          summary: 'Replace your notification preferences (quiet hours hold back mail that is not urgent)',
          security: [{ bearer: [] }],
          body: preferencesInput,
          response: { 200: preferencesSchema, 400: problemSchema, 401: problemSchema, 403: problemSchema },
        },
      },
      async (request) => engine.notifications.setPreferences(callerOf(request).principal, request.body),
    );
  };
}
