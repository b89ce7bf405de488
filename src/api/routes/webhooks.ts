import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { anyId, idOf } from '../../domain/input-schemas.js';
import { WEBHOOK_EVENTS, webhookReplayInput, webhookSubscriptionInput } from '../../domain/event-webhooks.js';
import type { Engine } from '../../engine/index.js';
import { callerOf } from '../authorization.js';
import { problemSchema } from '../problem.js';

const subscriptionSchema = z.object({
  id: z.string(),
  url: z.string(),
  description: z.string(),
  /** Empty: every event. */
  events: z.array(z.string()),
  allowInsecureHttp: z.boolean(),
  createdBy: z.string(),
  createdAt: z.string(),
});

const deliverySchema = z.object({
  id: z.string(),
  subscription: z.string(),
  event: z.string(),
  subject: z.string().nullable(),
  status: z.enum(['pending', 'sent', 'failed']),
  attempts: z.number().int(),
  replays: z.number().int(),
  lastStatus: z.number().int().nullable(),
  lastError: z.string().nullable(),
  createdAt: z.string(),
  sentAt: z.string().nullable(),
  finishedAt: z.string().nullable(),
});

const params = z.object({ id: idOf('webhook') }).strict();

const deliveriesQuery = z
  .object({
    status: z.enum(['pending', 'sent', 'failed']).optional(),
    /** The last id of the previous page: the page after it. */
    before: anyId.optional(),
    limit: z.coerce.number().int().min(1).max(1000).default(100),
  })
  .strict();

const errors = { 400: problemSchema, 401: problemSchema, 403: problemSchema, 404: problemSchema };
const security: Record<string, string[]>[] = [{ bearer: [] }, { session: [] }];

/** Admins only: who may send Lapse's events where is an admin's decision, and reading them shows every request. */
const admin = (scope: 'read' | 'admin', action: string, what: string) => ({
  scope,
  role: 'admin' as const,
  refused: { action, message: (who: { id: string }) => `${who.id} may not ${what}`, hint: 'Only admins (roles.admins in lapse.yaml) manage webhooks.' },
});

/**
 * Outbound event webhooks (docs/notifications.md): subscriptions receive lifecycle events as JSON
 * signed per the Standard Webhooks spec; deliveries are listed and can be replayed.
 */
export function webhookRoutes(engine: Engine): FastifyPluginAsyncZod {
  return async (app) => {
    app.get(
      '/api/v1/webhooks',
      {
        config: { auth: admin('read', 'webhook.list_refused', 'list webhook subscriptions') },
        schema: {
          tags: ['notifications'],
          summary: 'Webhook subscriptions (their secrets are never shown again)',
          security,
          response: { 200: z.object({ webhooks: z.array(subscriptionSchema), events: z.array(z.string()) }), ...errors },
        },
      },
      async () => ({ webhooks: [...(await engine.webhooks.list())], events: [...WEBHOOK_EVENTS] }),
    );

    app.post(
      '/api/v1/webhooks',
      {
        config: { auth: admin('admin', 'webhook.create_refused', 'create webhook subscriptions') },
        schema: {
          tags: ['notifications'],
          summary: 'Subscribe a URL to lifecycle events; the answer holds the signing secret (whsec_…), shown this once',
          security,
          body: webhookSubscriptionInput,
          response: { 201: z.object({ webhook: subscriptionSchema, secret: z.string() }), ...errors },
        },
      },
      async (request, reply) => {
        const { subscription, secret } = await engine.webhooks.create(callerOf(request).principal, request.body);
        return reply.code(201).header('cache-control', 'no-store').send({ webhook: subscription, secret });
      },
    );

    app.get(
      '/api/v1/webhooks/:id',
      {
        config: { auth: admin('read', 'webhook.list_refused', 'read webhook subscriptions') },
        schema: { tags: ['notifications'], summary: 'One webhook subscription', security, params, response: { 200: subscriptionSchema, ...errors } },
      },
      async (request) => engine.webhooks.get(request.params.id),
    );

    app.delete(
      '/api/v1/webhooks/:id',
      {
        config: { auth: admin('admin', 'webhook.delete_refused', 'delete webhook subscriptions') },
        schema: {
          tags: ['notifications'],
          summary: 'Delete a subscription and its deliveries (pending ones are not sent)',
          security,
          params,
          response: { 204: z.null(), ...errors },
        },
      },
      async (request, reply) => {
        await engine.webhooks.remove(callerOf(request).principal, request.params.id);
        return reply.code(204).send(null);
      },
    );

    app.get(
      '/api/v1/webhooks/:id/deliveries',
      {
        config: { auth: admin('read', 'webhook.list_refused', 'read webhook deliveries') },
        schema: {
          tags: ['notifications'],
          summary: "A subscription's deliveries, newest first: pending, sent or failed, with the receiver's last answer",
          security,
          params,
          querystring: deliveriesQuery,
          response: { 200: z.object({ deliveries: z.array(deliverySchema), next: z.string().nullable() }), ...errors },
        },
      },
      async (request) => {
        const { limit, ...filter } = request.query;
        const deliveries = await engine.webhooks.deliveries(request.params.id, { ...filter, limit });
        return { deliveries: [...deliveries], next: deliveries.length === limit ? (deliveries.at(-1)?.id ?? null) : null };
      },
    );

    app.post(
      '/api/v1/webhooks/:id/replay',
      {
        config: { auth: admin('admin', 'webhook.replay_refused', 'replay webhook deliveries') },
        schema: {
          tags: ['notifications'],
          summary: 'Send deliveries again: one ({ delivery }) or a range by id ({ from, to }, up to 1,000), same webhook-id, new signature',
          security,
          params,
          body: webhookReplayInput,
          response: { 200: z.object({ replayed: z.array(z.string()) }), ...errors },
        },
      },
      async (request) => engine.webhooks.replay(callerOf(request).principal, request.params.id, request.body),
    );
  };
}
