import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { GRANT_STATUSES, type GrantStatus } from '../../domain/grant.js';
import { durationText, idOf, reasonText, ticketText } from '../../domain/input-schemas.js';
import { boundedText } from '../../domain/text.js';
import { parseDuration } from '../../domain/duration.js';
import type { Engine } from '../../engine/index.js';
import { idempotent } from '../idempotency.js';
import { problemSchema } from '../problem.js';
import { decodeCursor, encodeCursor, grantView, pageOf, pageQuery, requestView, toGrantView, toRequestView } from '../views.js';
import { clientOf } from './requests.js';
import { callerOf, visibleGrant, refuseRole } from '../authorization.js';
import { readsEverything, holdsGrant } from '../../domain/authorization.js';

const grantId = z.object({ id: idOf('grant') });
const errors = { 400: problemSchema, 401: problemSchema, 403: problemSchema, 404: problemSchema, 409: problemSchema, 410: problemSchema };
const oneStatus = `(${GRANT_STATUSES.join('|')})`;
const listQuery = z
  .object({
    scope: z.enum(['mine', 'all']).default('mine'),
    status: z
      .string()
      .max(80)
      .regex(new RegExp(`^${oneStatus}(,${oneStatus})*$`), 'must be grant statuses, comma-separated')
      .optional()
      .describe(`One status or several, comma-separated (${GRANT_STATUSES.join(', ')})`),
    target: boundedText(63).optional(),
    ...pageQuery,
  })
  .strict();

async function view(engine: Engine, id: string) {
  const grant = (await engine.read.grant(id))!;
  return toGrantView(grant, await engine.read.credentialsWaiting(id));
}

/** Grants: what access people hold now, and ending or extending it. */
export function grantRoutes(engine: Engine): FastifyPluginAsyncZod {
  return async (app) => {
    app.get(
      '/api/v1/grants',
      {
        config: { auth: { scope: 'read' } },
        schema: {
          tags: ['grants'],
          summary: 'List grants: mine, or all (admins, auditors)',
          security: [{ bearer: [] }],
          querystring: listQuery,
          response: { 200: pageOf(grantView), ...errors },
        },
      },
      async (request) => {
        const caller = callerOf(request);
        const { scope, status, target, limit, cursor } = request.query;
        if (scope === 'all' && !readsEverything(engine.config.roles, caller.principal)) {
          await refuseRole(engine, caller.principal, '/api/v1/grants?scope=all', 'only admins and auditors may list every grant', 'Use scope=mine.');
        }
        const beforeId = decodeCursor(cursor);
        const items = await engine.read.grants({
          ...(scope === 'mine' ? { principalId: caller.principal.id } : {}),
          ...(status ? { statuses: status.split(',') as GrantStatus[] } : {}),
          ...(target ? { target } : {}),
          ...(beforeId ? { beforeId } : {}),
          limit: limit + 1,
        });
        const page = items.slice(0, limit);
        const waiting = await engine.read.credentialsWaitingAmong(page.map((g) => g.id));
        return { items: page.map((g) => toGrantView(g, waiting.has(g.id))), nextCursor: items.length > limit ? encodeCursor(page.at(-1)!.id) : null };
      },
    );

    app.get(
      '/api/v1/grants/:id',
      {
        config: { auth: { scope: 'read' } },
        schema: {
          tags: ['grants'],
          summary: 'One grant',
          security: [{ bearer: [] }],
          params: grantId,
          response: { 200: z.object({ grant: grantView }), ...errors },
        },
      },
      async (request) => {
        await visibleGrant(engine, request, request.params.id);
        return { grant: await view(engine, request.params.id) };
      },
    );

    app.post(
      '/api/v1/grants/:id/extend',
      {
        config: { auth: { scope: 'request' } },
        schema: {
          tags: ['grants'],
          summary: 'Ask for more time on my active grant (the policy decides; access stays continuous)',
          security: [{ bearer: [] }],
          params: grantId,
          body: z.object({ duration: durationText, reason: reasonText, ticket: ticketText.optional() }).strict(),
          response: { 200: z.object({ request: requestView }), ...errors },
        },
      },
      async (request, reply) => {
        const caller = callerOf(request);
        await visibleGrant(engine, request, request.params.id);
        const body = request.body;
        return idempotent(
          engine,
          request,
          reply,
          caller,
          200,
          () =>
            engine.extend({
              grantId: request.params.id,
              by: caller.principal,
              durationMs: parseDuration(body.duration, 'duration'),
              reason: body.reason,
              ...(body.ticket ? { ticket: body.ticket } : {}),
              client: clientOf(request, caller),
            }),
          (extension) => ({ request: toRequestView(extension) }),
        );
      },
    );

    app.post(
      '/api/v1/grants/:id/release',
      {
        config: { auth: { scope: 'request' } },
        schema: {
          tags: ['grants'],
          summary: 'Give my access back now',
          security: [{ bearer: [] }],
          params: grantId,
          body: z.object({ reason: reasonText.optional() }).strict().nullish(),
          response: { 200: z.object({ grant: grantView }), ...errors },
        },
      },
      async (request, reply) => {
        const caller = callerOf(request);
        await visibleGrant(engine, request, request.params.id);
        return idempotent(
          engine,
          request,
          reply,
          caller,
          200,
          () => engine.release({ grantId: request.params.id, by: caller.principal, reason: request.body?.reason ?? '' }),
          // An ending grant's credentials are erased in the same change: none are waiting.
          (released) => ({ grant: toGrantView(released, false) }),
        );
      },
    );

    app.post(
      '/api/v1/grants/:id/revoke',
      {
        config: { auth: { scope: 'admin' } },
        schema: {
          tags: ['grants'],
          summary: 'Take access away now (admins)',
          security: [{ bearer: [] }],
          params: grantId,
          body: z.object({ reason: reasonText.min(1) }).strict(),
          response: { 200: z.object({ grant: grantView }), ...errors },
        },
      },
      async (request, reply) => {
        const caller = callerOf(request);
        await visibleGrant(engine, request, request.params.id);
        return idempotent(
          engine,
          request,
          reply,
          caller,
          200,
          () => engine.revoke({ grantId: request.params.id, by: caller.principal, reason: request.body.reason }),
          (revoked) => ({ grant: toGrantView(revoked, false) }),
        );
      },
    );

    app.post(
      '/api/v1/grants/:id/credentials',
      {
        config: { auth: { scope: 'request' } },
        schema: {
          tags: ['grants'],
          summary: 'Fetch the credentials of my active grant, once',
          description: 'Handed out once and then erased: a second call answers 410. Never cached (Cache-Control: no-store).',
          security: [{ bearer: [] }],
          params: grantId,
          response: { 200: z.object({ credentials: z.record(z.string(), z.string()) }), ...errors },
        },
      },
      async (request, reply) => {
        const caller = callerOf(request);
        reply.header('cache-control', 'no-store');
        await visibleGrant(engine, request, request.params.id, holdsGrant);
        // NB. Not idempotent by design: a replay would hand the secret out a second time.
        const credentials = await engine.fetchCredentials({ grantId: request.params.id, by: caller.principal });
        return { credentials };
      },
    );
  };
}
