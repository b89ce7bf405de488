import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { userNameSchema } from '../../auth/principals.js';
import { LapseError } from '../../domain/errors.js';
import { boundedText } from '../../domain/text.js';
import type { Engine } from '../../engine/index.js';
import { callerOf } from '../authorization.js';
import { problemSchema } from '../problem.js';

const params = z.object({ name: userNameSchema }).strict();
const body = z.object({ reason: boundedText(500).trim().min(1) }).strict();
const errors = { 400: problemSchema, 401: problemSchema, 403: problemSchema, 404: problemSchema };
const adminOnly = {
  scope: 'admin',
  role: 'admin',
  refused: {
    action: 'user.change_refused',
    message: (who: { id: string }) => `${who.id} is not an admin`,
    hint: 'Only admins (roles.admins) disable or enable people.',
  },
} as const;

/**
 * People (admins): deprovisioning (`disable` ends their sessions, tokens, pending requests and
 * grants at once; docs/identity.md) and re-enabling (sign-in only).
 */
export function userRoutes(engine: Engine): FastifyPluginAsyncZod {
  return async (app) => {
    app.post(
      '/api/v1/users/:name/disable',
      {
        config: { auth: adminOnly },
        schema: {
          tags: ['auth'],
          summary: 'Deprovision a person: end their sessions and API tokens, cancel their pending requests, revoke their grants (admins)',
          security: [{ bearer: [] }, { session: [] }],
          params,
          body,
          response: {
            200: z.object({
              user: z.object({ id: z.string(), name: z.string() }),
              changed: z.boolean().describe('false when they were disabled already (what they still held is ended anyway)'),
              sessionsEnded: z.number().int(),
              apiAccessRevoked: z.number().int().describe('API tokens revoked'),
              requestsCancelled: z.array(z.string()),
              grantsRevoked: z.array(z.string()).describe('grants whose revoke started; the scheduler removes the access at the target'),
            }),
            ...errors,
          },
        },
      },
      async (request) => {
        const caller = callerOf(request).principal;
        if (caller.id === request.params.name) {
          throw new LapseError('validation_failed', 'you cannot disable yourself', {
            where: 'name',
            hint: 'Another admin, or `lapse admin user disable` on the server, can.',
          });
        }
        const done = await engine.disableUser({ name: request.params.name, actor: caller.id, reason: request.body.reason });
        return { ...done, requestsCancelled: [...done.requestsCancelled], grantsRevoked: [...done.grantsRevoked] };
      },
    );

    app.post(
      '/api/v1/users/:name/enable',
      {
        config: { auth: adminOnly },
        schema: {
          tags: ['auth'],
          summary: 'Let a disabled person sign in again; nothing they held comes back (admins)',
          security: [{ bearer: [] }, { session: [] }],
          params,
          body,
          response: { 200: z.object({ user: z.object({ id: z.string(), name: z.string() }), changed: z.boolean() }), ...errors },
        },
      },
      async (request) => engine.enableUser({ name: request.params.name, actor: callerOf(request).principal.id, reason: request.body.reason }),
    );
  };
}
