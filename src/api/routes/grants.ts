import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { GRANT_STATUSES, type GrantStatus } from '../../domain/grant.js';
import { durationText, idOf, reasonText, ticketText } from '../../domain/input-schemas.js';
import { boundedText } from '../../domain/text.js';
import { parseDuration } from '../../domain/duration.js';
import type { Engine } from '../../engine/index.js';
import { getGrant, hasCredentials, listGrants } from '../../store/index.js';
import { canSeeGrant, readsEverything, refuseRole, refuseUnseen } from '../access-rules.js';
import { authenticate, type Caller } from '../authenticate.js';
import { idempotent } from '../idempotency.js';
import { problemSchema } from '../problem.js';
import { decodeCursor, encodeCursor, grantView, pageOf, pageQuery, requestView, toGrantView, toRequestView } from '../views.js';
import { clientOf } from './requests.js';

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

async function visibleGrant(engine: Engine, caller: Caller, id: string, route: string) {
  const grant = await getGrant(engine.store.db, id);
  if (!grant || !canSeeGrant(engine.config, caller.principal, grant)) return refuseUnseen(engine, caller.principal, 'grant', id, grant !== undefined, route);
  return grant;
}

async function view(engine: Engine, id: string) {
  const db = engine.store.db;
  const grant = (await getGrant(db, id))!;
  return toGrantView(grant, await hasCredentials(db, id));
}

/** Grants: what access people hold now, and ending or extending it. */
export function grantRoutes(engine: Engine): FastifyPluginAsyncZod {
  return async (app) => {
    app.get(
      '/api/v1/grants',
      { schema: { tags: ['grants'], summary: 'List grants: mine, or all (admins, auditors)', security: [{ bearer: [] }], querystring: listQuery, response: { 200: pageOf(grantView), ...errors } } },
      async (request) => {
        const caller = await authenticate(engine, request, 'read');
        const { scope, status, target, limit, cursor } = request.query;
        if (scope === 'all' && !readsEverything(engine.config, caller.principal)) {
          await refuseRole(engine, caller.principal, '/api/v1/grants?scope=all', 'only admins and auditors may list every grant', 'Use scope=mine.');
        }
        const beforeId = decodeCursor(cursor);
        const db = engine.store.db;
        const items = await listGrants(db, {
          ...(scope === 'mine' ? { principalId: caller.principal.id } : {}),
          ...(status ? { statuses: status.split(',') as GrantStatus[] } : {}),
          ...(target ? { target } : {}),
          ...(beforeId ? { beforeId } : {}),
          limit: limit + 1,
        });
        const page = items.slice(0, limit);
        const waiting = new Set(
          page.length === 0 ? [] : (await db.selectFrom('grant_credentials').select('grant_id').where('grant_id', 'in', page.map((g) => g.id)).execute()).map((r) => r.grant_id),
        );
        return { items: page.map((g) => toGrantView(g, waiting.has(g.id))), nextCursor: items.length > limit ? encodeCursor(page.at(-1)!.id) : null };
      },
    );

    app.get(
      '/api/v1/grants/:id',
      { schema: { tags: ['grants'], summary: 'One grant', security: [{ bearer: [] }], params: grantId, response: { 200: z.object({ grant: grantView }), ...errors } } },
      async (request) => {
        const caller = await authenticate(engine, request, 'read');
        await visibleGrant(engine, caller, request.params.id, request.routeOptions.url ?? '');
        return { grant: await view(engine, request.params.id) };
      },
    );

    app.post(
      '/api/v1/grants/:id/extend',
      {
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
        const caller = await authenticate(engine, request, 'request');
        await visibleGrant(engine, caller, request.params.id, request.routeOptions.url ?? '');
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
        const caller = await authenticate(engine, request, 'request');
        await visibleGrant(engine, caller, request.params.id, request.routeOptions.url ?? '');
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
        const caller = await authenticate(engine, request, 'admin');
        await visibleGrant(engine, caller, request.params.id, request.routeOptions.url ?? '');
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
        const caller = await authenticate(engine, request, 'request');
        reply.header('cache-control', 'no-store');
        const grant = await getGrant(engine.store.db, request.params.id);
        if (!grant || grant.principalId !== caller.principal.id) await refuseUnseen(engine, caller.principal, 'grant', request.params.id, grant !== undefined, request.routeOptions.url ?? '');
        // NB. Not idempotent by design: a replay would hand the secret out a second time.
        const credentials = await engine.fetchCredentials({ grantId: request.params.id, by: caller.principal });
        return { credentials };
      },
    );
  };
}
