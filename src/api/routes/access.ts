import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { resourceName as name } from '../../domain/input-schemas.js';
import { boundedText } from '../../domain/text.js';
import { LapseError } from '../../domain/errors.js';
import type { Engine } from '../../engine/index.js';
import { problemSchema } from '../problem.js';
import { callerOf, refuse, routeOf } from '../authorization.js';
import { mayCheckAccessOf } from '../../domain/authorization.js';

const querySchema = z.object({ principal: boundedText(256).min(1), target: name, entitlement: name }).strict();
const checkSchema = z.object({ allowed: z.boolean(), grantId: z.string().nullable(), expiresAt: z.string().nullable() });

/**
 * `GET /api/v1/access/check`: does the principal hold the entitlement right now? Answers from the
 * database clock and says no at expiresAt + 0. Callers may ask about themselves; admins and
 * auditors about anyone.
 */
export function accessRoutes(engine: Engine): FastifyPluginAsyncZod {
  return async (app) => {
    app.get(
      '/api/v1/access/check',
      {
        config: { auth: { scope: 'read' } },
        schema: {
          tags: ['access'],
          summary: 'Whether a principal holds an entitlement now',
          security: [{ bearer: [] }],
          querystring: querySchema,
          response: { 200: checkSchema, 400: problemSchema, 401: problemSchema, 403: problemSchema },
        },
      },
      async (request) => {
        const { principal: caller } = callerOf(request);
        const { principal, target, entitlement } = request.query;
        if (!mayCheckAccessOf(engine.config.roles, caller, principal)) {
          const message = `${caller.id} may only check their own access`;
          await refuse(
            engine,
            { caller, route: routeOf(request), reason: message, action: 'access.check_refused', data: { principal, entitlement: `${target}/${entitlement}` } },
            new LapseError('forbidden', message, { hint: 'Admins and auditors may check anyone.' }),
          );
        }
        const check = await engine.checkAccess(principal, target, entitlement);
        return { allowed: check.allowed, grantId: check.grantId, expiresAt: check.expiresAt?.toISOString() ?? null };
      },
    );
  };
}
