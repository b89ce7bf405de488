import type { FastifyRequest } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Engine } from '../../engine/index.js';
import { callerOf, routeOf } from '../authorization.js';
import { problemSchema } from '../problem.js';

/** A Lapse user name, as users are named (the path of an admin mapping). */
const userName = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[a-z0-9][a-z0-9_.@-]*$/, 'a user name: lower-case letters, digits, "_", ".", "@" and "-"');

const linkBody = z
  .object({
    user: userName,
    slackUserId: z.string().max(32).nullable().describe('The Slack member id (U…), from the person\'s Slack profile: "Copy member ID"; null unlinks'),
  })
  .strict();

const header = (request: FastifyRequest, name: string): string | undefined => {
  const value = request.headers[name];
  return typeof value === 'string' ? value.slice(0, 200) : undefined;
};

const signed = (request: FastifyRequest) => ({
  rawBody: typeof request.body === 'string' ? request.body : '',
  timestamp: header(request, 'x-slack-request-timestamp'),
  signature: header(request, 'x-slack-signature'),
  route: routeOf(request),
});

const admin = (action: string, what: string) => ({
  scope: 'admin' as const,
  role: 'admin' as const,
  refused: { action, message: (who: { id: string }) => `${who.id} may not ${what}`, hint: 'Only admins (roles.admins in lapse.yaml) do this.' },
});

/**
 * Slack (docs/notifications.md#slack): what Slack posts to Lapse (button clicks, the `/lapse link`
 * command), verified by the app's signature rather than a Lapse credential; and linking a person's
 * Slack user id, by a code they send to the app or by an admin.
 */
export function slackRoutes(engine: Engine): FastifyPluginAsyncZod {
  return async (app) => {
    // NB. Slack signs the raw body: it is kept as the string that arrived (form-encoded), and
    // parsed only after the signature is checked. Scoped to these routes (a plugin of its own).
    app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: 512 * 1024 }, (_request, body, done) => {
      done(null, body);
    });

    app.post(
      '/api/v1/integrations/slack/interactions',
      {
        config: { auth: { public: 'Slack-signed (X-Slack-Signature over the raw body with the signing secret, 5-minute window, once only)' } },
        schema: {
          tags: ['slack'],
          summary: 'Slack interactivity request URL: Approve / Deny clicks (form-encoded payload=, signed by Slack)',
          response: { 200: z.object({}), 401: problemSchema, 404: problemSchema },
        },
      },
      async (request) => {
        await engine.slack.interaction(signed(request));
        // Acknowledged now; the decision is taken right after and the message updated (Slack allows 3 s for this answer).
        return {};
      },
    );

    app.post(
      '/api/v1/integrations/slack/commands',
      {
        config: { auth: { public: 'Slack-signed (X-Slack-Signature over the raw body with the signing secret, 5-minute window, once only)' } },
        schema: {
          tags: ['slack'],
          summary: 'Slack slash command request URL: `/lapse link CODE` links your Slack user to your Lapse user',
          response: { 200: z.object({ response_type: z.literal('ephemeral'), text: z.string() }), 401: problemSchema, 404: problemSchema },
        },
      },
      async (request) => ({ response_type: 'ephemeral' as const, text: (await engine.slack.command(signed(request))).text }),
    );

    app.get(
      '/api/v1/me/slack',
      {
        config: { auth: { scope: 'read' } },
        schema: {
          tags: ['slack'],
          summary: 'The Slack user your Lapse user is linked to (null: none)',
          security: [{ bearer: [] }],
          response: { 200: z.object({ slackUserId: z.string().nullable() }), 401: problemSchema },
        },
      },
      async (request) => engine.slack.linkOf(callerOf(request).principal.id),
    );

    app.post(
      '/api/v1/me/slack/link-code',
      {
        config: { auth: { scope: 'request' } },
        schema: {
          tags: ['slack'],
          summary: 'A one-time code (10 minutes) to link your Slack user: send `/lapse link CODE` in Slack',
          security: [{ bearer: [] }],
          response: { 200: z.object({ code: z.string(), expiresAt: z.string(), instructions: z.string() }), 401: problemSchema, 403: problemSchema },
        },
      },
      async (request) => {
        const issued = await engine.slack.issueLinkCode(callerOf(request).principal);
        return {
          code: issued.code,
          expiresAt: issued.expiresAt.toISOString(),
          instructions: `In Slack, send: /lapse link ${issued.code} (works once, until ${issued.expiresAt.toISOString()})`,
        };
      },
    );

    app.post(
      '/api/v1/integrations/slack/links',
      {
        config: { auth: admin('slack.link_refused', 'link Slack accounts') },
        schema: {
          tags: ['slack'],
          summary: "Link a person's Slack user id, replacing their link, or unlink them with null (admins)",
          security: [{ bearer: [] }],
          body: linkBody,
          response: {
            200: z.object({ user: z.string(), slackUserId: z.string().nullable() }),
            400: problemSchema,
            401: problemSchema,
            403: problemSchema,
            404: problemSchema,
            409: problemSchema,
          },
        },
      },
      async (request) => engine.slack.mapUser(callerOf(request).principal, request.body.user, request.body.slackUserId),
    );
  };
}
