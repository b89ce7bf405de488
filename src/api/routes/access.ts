import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { resourceName as name } from '../../domain/input-schemas.js';
import { boundedText } from '../../domain/text.js';
import { LapseError } from '../../domain/errors.js';
import { inSubjectSet } from '../../domain/principal.js';
import type { Engine } from '../../engine/index.js';
import { authenticate } from '../authenticate.js';
import { problemSchema } from '../problem.js';

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
        schema: {
          tags: ['access'],
          summary: 'Whether a principal holds an entitlement now',
          security: [{ bearer: [] }],
          querystring: querySchema,
          response: { 200: checkSchema, 400: problemSchema, 401: problemSchema, 403: problemSchema },
        },
      },
      async (request) => {
        const { principal: caller } = await authenticate(engine, request, 'read');
        const { principal, target, entitlement } = request.query;
        const roles = engine.config.roles;
        if (principal !== caller.id && !inSubjectSet(caller, roles.admins) && !inSubjectSet(caller, roles.auditors)) {
          await engine.recordSecurityEvent({ action: 'access.check_refused', actor: caller.id, data: { principal, entitlement: `${target}/${entitlement}` } });
          throw new LapseError('forbidden', `${caller.id} may only check their own access`, { hint: 'Admins and auditors may check anyone.' });
        }
        const check = await engine.checkAccess(principal, target, entitlement);
        return { allowed: check.allowed, grantId: check.grantId, expiresAt: check.expiresAt?.toISOString() ?? null };
      },
    );
  };
}
