import type { FastifyRequest } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { boundedText } from '../../domain/text.js';
import { csrfTokenFor, PASSWORD_MAX_LENGTH, roleNames, sessionCookieName, TOKEN_SCOPES, type AuthService } from '../../auth/index.js';
import { LapseError } from '../../domain/errors.js';
import type { Engine } from '../../engine/index.js';
import { type Caller } from '../authenticate.js';
import { problemSchema } from '../problem.js';
import { clearSessionCookie } from '../session-cookie.js';
import { startSession } from '../sign-in.js';
import { callerOf, callerIfAny } from '../authorization.js';

const userView = z.object({ name: z.string(), kind: z.enum(['user', 'service']), groups: z.array(z.string()) });
const loginBody = z.object({ username: boundedText(256).min(1), password: z.string().min(1).max(PASSWORD_MAX_LENGTH) }).strict();
const loginResponse = z.object({ user: userView, csrfToken: z.string(), expiresAt: z.iso.datetime() });
const sessionView = z.object({
  principal: z.object({ id: z.string(), kind: z.enum(['user', 'service']), groups: z.array(z.string()) }),
  roles: z.array(z.string()),
  scopes: z.array(z.enum(TOKEN_SCOPES)),
  via: z.enum(['token', 'session']),
  mfaAt: z.iso.datetime().nullable(),
  csrfToken: z.string().nullable(),
});
const statusView = z.object({ signedIn: z.boolean(), session: sessionView.nullable() });
const logoutResponse = z.object({ ended: z.enum(['session', 'token']), logoutUrl: z.string().nullable() });
const logoutAllBody = z
  .object({ revokeTokens: z.boolean().default(false) })
  .strict()
  .prefault({});
const logoutAllResponse = z.object({ sessionsEnded: z.number().int(), tokensRevoked: z.number().int() });
const errors = { 400: problemSchema, 401: problemSchema, 403: problemSchema, 404: problemSchema, 429: problemSchema };

async function userIdOf(auth: AuthService, caller: Caller): Promise<string> {
  const id = (await auth.userByName(caller.principal.id))?.id;
  if (!id) throw new LapseError('unauthenticated', 'your account no longer exists');
  return id;
}

/**
 * Sign-in with a local password, who am I, and sign-out (this session or token, or everywhere).
 * `idpLogoutUrl` gives the IdP's logout URL, when it has one, so signing out of Lapse can end the SSO session too.
 */
export function authRoutes(engine: Engine, auth: AuthService, idpLogoutUrl: (request: FastifyRequest) => Promise<string | null>): FastifyPluginAsyncZod {
  return async (app) => {
    app.post(
      '/api/v1/auth/login',
      {
        config: { auth: { public: 'signing in: the password is the credential' } },
        schema: {
          tags: ['auth'],
          summary: 'Sign in with a local user name and password (sets the session cookie)',
          body: loginBody,
          response: { 200: loginResponse, ...errors },
        },
      },
      async (request, reply) => {
        const settings = engine.config.auth;
        if (!settings.local.enabled)
          throw new LapseError('not_found', 'local accounts are disabled on this server', { hint: 'Sign in with single sign-on: /auth/oidc/login.' });
        const user = await auth.checkLocalPassword({ ...request.body, ip: request.ip }, settings.loginLimits);
        const session = await startSession(engine, auth, request, reply, user, 'password');
        return {
          user: { name: user.name, kind: user.kind, groups: [...user.groups] },
          csrfToken: session.csrfToken,
          expiresAt: session.expiresAt.toISOString(),
        };
      },
    );

    const viewOf = (request: FastifyRequest, caller: Caller): z.infer<typeof sessionView> => ({
      principal: { id: caller.principal.id, kind: caller.principal.kind, groups: [...caller.principal.groups] },
      roles: roleNames(caller.principal, engine.config.roles),
      scopes: [...caller.scopes],
      via: caller.via,
      mfaAt: caller.mfaAt?.toISOString() ?? null,
      csrfToken: caller.via === 'session' ? csrfTokenFor(request.cookies[sessionCookieName(engine.config.auth)] ?? '') : null,
    });

    app.get(
      '/api/v1/auth/session',
      {
        config: { auth: { scope: 'read' } },
        schema: {
          tags: ['auth'],
          summary: 'Who am I: principal, groups, roles, scopes, MFA time, CSRF token',
          security: [{ bearer: [] }, { session: [] }],
          response: { 200: sessionView, ...errors },
        },
      },
      async (request, reply) => {
        const caller = callerOf(request);
        reply.header('cache-control', 'no-store');
        return viewOf(request, caller);
      },
    );

    app.get(
      '/api/v1/auth/status',
      {
        config: { auth: { scope: 'read', optional: true } },
        schema: {
          tags: ['auth'],
          summary: 'Am I signed in? 200 {signedIn:false} for a visitor without credentials (not audited); a credential that is not valid is 401, audited',
          security: [{}, { bearer: [] }, { session: [] }],
          response: { 200: statusView, ...errors },
        },
      },
      async (request, reply) => {
        reply.header('cache-control', 'no-store');
        // NB. Asking without any credential is the normal question of a signed-out page, not a
        // security event; presenting one that fails still is (the route's optional rule: src/api/authorization.ts).
        const caller = callerIfAny(request);
        return caller ? { signedIn: true, session: viewOf(request, caller) } : { signedIn: false, session: null };
      },
    );

    app.post(
      '/api/v1/auth/logout',
      {
        config: { auth: { scope: 'read' } },
        schema: {
          tags: ['auth'],
          summary: 'Sign out: ends this session (cookie) or revokes this token (bearer)',
          security: [{ bearer: [] }, { session: [] }],
          response: { 200: logoutResponse, ...errors },
        },
      },
      async (request, reply) => {
        const caller = callerOf(request);
        if (caller.via === 'token') {
          await auth.revokeToken(caller.tokenId!, caller.principal.id, { reason: 'logout' });
          return { ended: 'token' as const, logoutUrl: null };
        }
        await auth.endSession(caller.sessionId!, caller.principal.id);
        clearSessionCookie(reply, engine.config.auth);
        return { ended: 'session' as const, logoutUrl: await idpLogoutUrl(request) };
      },
    );

    app.post(
      '/api/v1/auth/logout-all',
      {
        config: { auth: { scope: 'read' } },
        schema: {
          tags: ['auth'],
          summary: 'Sign out everywhere: every session of mine (and with revokeTokens, every token)',
          security: [{ bearer: [] }, { session: [] }],
          body: logoutAllBody,
          response: { 200: logoutAllResponse, ...errors },
        },
      },
      async (request, reply) => {
        const caller = callerOf(request);
        const userId = await userIdOf(auth, caller);
        const result = await auth.endEverywhere(userId, caller.principal.id, request.body.revokeTokens);
        if (caller.via === 'session') clearSessionCookie(reply, engine.config.auth);
        return result;
      },
    );
  };
}
