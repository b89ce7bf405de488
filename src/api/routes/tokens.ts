import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { boundedText } from '../../domain/text.js';
import { hasScope, TOKEN_SCOPES, type AuthService, type TokenScope } from '../../auth/index.js';
import { userNameSchema } from '../../auth/principals.js';
import { parseDuration } from '../../domain/duration.js';
import { isLapseError, LapseError } from '../../domain/errors.js';
import { viaData } from '../../domain/principal.js';
import { isAdmin } from '../../domain/authorization.js';
import type { Engine } from '../../engine/index.js';
import { problemSchema } from '../problem.js';
import { callerOf, refuse } from '../authorization.js';
import { requireFreshMfaIfEnrolled } from '../step-up.js';

/** Tokens from `lapse login` last 30 days; sign in again after that. */
const CLI_TOKEN_LIFETIME_MS = 30 * 86_400_000;

const tokenView = z.object({
  id: z.string(),
  user: z.string(),
  name: z.string(),
  scopes: z.array(z.enum(TOKEN_SCOPES)),
  issuedBy: z.string().describe('who created it: the user, an admin (service identities), or cli:<os user> (lapse admin token create)'),
  createdAt: z.iso.datetime(),
  expiresAt: z.iso.datetime().nullable(),
  lastUsedAt: z.iso.datetime().nullable(),
  status: z.enum(['active', 'expired', 'revoked']),
});
const issuedView = z.object({
  id: z.string(),
  user: z.string(),
  token: z.string(),
  name: z.string(),
  scopes: z.array(z.enum(TOKEN_SCOPES)),
  expiresAt: z.iso.datetime().nullable(),
});
const listQuery = z.object({ user: userNameSchema.optional() }).strict();
const createBody = z
  .object({
    name: boundedText(100).trim().min(1),
    scopes: z.array(z.enum(TOKEN_SCOPES)).min(1).max(4),
    expiresIn: boundedText(32).default('90d').describe('a duration such as 30d, or "never"'),
    user: userNameSchema.optional().describe('admins only: issue for a service identity (never for another person)'),
  })
  .strict();
const cliTokenBody = z
  .object({ code: boundedText(128).min(1), codeVerifier: boundedText(128).min(43), name: boundedText(100).trim().min(1).default('lapse login') })
  .strict();
const errors = { 400: problemSchema, 401: problemSchema, 403: problemSchema, 404: problemSchema };

const iso = (value: Date | string | null) => (value === null ? null : new Date(value).toISOString());

/**
 * API tokens for the CLI and automation: list mine (with last use), create (shown once; never more
 * than the caller may do), revoke (mine, or any for admins); and the exchange that turns a
 * `lapse login` browser sign-in into a token.
 */
export function tokenRoutes(engine: Engine, auth: AuthService): FastifyPluginAsyncZod {
  return async (app) => {
    app.get(
      '/api/v1/tokens',
      {
        config: { auth: { scope: 'read' } },
        schema: {
          tags: ['auth'],
          summary: 'My API tokens (admins: ?user=name)',
          security: [{ bearer: [] }, { session: [] }],
          querystring: listQuery,
          response: { 200: z.object({ tokens: z.array(tokenView) }), ...errors },
        },
      },
      async (request) => {
        const caller = callerOf(request);
        const name = request.query.user ?? caller.principal.id;
        if (name !== caller.principal.id && !caller.scopes.includes('admin')) {
          await refuse(
            engine,
            { caller: caller.principal, route: '/api/v1/tokens', reason: 'not admin', action: 'auth.refused', data: { user: name } },
            new LapseError('not_found', `there is no user ${name}`),
          );
        }
        const rows = await auth.listTokensOf(name);
        return {
          tokens: rows.map((t) => ({
            id: t.id,
            user: t.user,
            name: t.name,
            scopes: t.scopes as TokenScope[],
            issuedBy: t.issuedBy,
            createdAt: iso(t.createdAt)!,
            expiresAt: iso(t.expiresAt),
            lastUsedAt: iso(t.lastUsedAt),
            status: t.revokedAt ? ('revoked' as const) : t.expired ? ('expired' as const) : ('active' as const),
          })),
        };
      },
    );

    app.post(
      '/api/v1/tokens',
      {
        config: { auth: { scope: 'read' } },
        schema: {
          tags: ['auth'],
          summary: 'Create an API token (the secret is in this response only)',
          security: [{ bearer: [] }, { session: [] }],
          body: createBody,
          response: { 201: issuedView, ...errors },
        },
      },
      async (request, reply) => {
        const caller = callerOf(request);
        const body = request.body;
        const refuseToken = (reason: string, message: string, where: string, hint: string, extra: Record<string, unknown> = {}): Promise<never> =>
          refuse(
            engine,
            { caller: caller.principal, route: '/api/v1/tokens', reason, action: 'auth.refused', data: { ...viaData(caller.principal), ...extra } },
            new LapseError('forbidden', message, { where, hint }),
          );
        // NB. caller.scopes are what the caller may do now (a token: its scopes within its owner's roles today).
        const missing = body.scopes.filter((s) => !hasScope(caller.scopes, s));
        if (missing.length > 0) {
          await refuseToken(
            `scopes beyond the caller's: ${missing.join(', ')}`,
            `you cannot give a token scopes you do not have: ${missing.join(', ')}`,
            'scopes',
            `Your scopes: ${caller.scopes.join(', ') || 'none'}.`,
          );
        }
        const ownerName = body.user ?? caller.principal.id;
        if (ownerName !== caller.principal.id && !caller.scopes.includes('admin')) {
          await refuseToken('not admin', 'only admins may create tokens for others', 'user', 'Create a token for yourself (leave out "user").', {
            user: ownerName,
          });
        }
        const owner = await auth.userByName(ownerName);
        if (!owner || owner.disabled_at !== null) throw new LapseError('not_found', `there is no user ${ownerName}`, { where: 'user' });
        // NB. Nobody, admins included, holds a token that acts as another person: it would let them
        // approve their own request in that person's name. Tokens for others are for service identities.
        if (owner.name !== caller.principal.id && owner.kind !== 'service') {
          await refuseToken(
            'token for another person',
            `${ownerName} is a person: nobody may create a token that acts as someone else`,
            'user',
            `People create their own tokens (sign in, or \`lapse login\`); automation gets a service identity (\`lapse admin user create NAME --service\`) and a token for it.`,
            { user: ownerName },
          );
        }
        // NB. A token for someone else cannot exceed what that principal could do when signed in.
        if (owner.name !== caller.principal.id && body.scopes.includes('admin') && !isAdmin(engine.config.roles, { id: owner.name, groups: owner.groups })) {
          throw new LapseError('forbidden', `${ownerName} is not an admin, so their token cannot have the admin scope`, { where: 'scopes' });
        }
        const expiresInMs = body.expiresIn === 'never' ? null : parseDuration(body.expiresIn, 'expiresIn');
        // A token never mints one that outlives it (a stolen token must not buy itself a longer life).
        const notAfter = caller.via === 'token' ? (caller.tokenExpiresAt ?? null) : null;
        if (notAfter !== null && (expiresInMs === null || (await engine.read.now()).getTime() + expiresInMs > notAfter.getTime())) {
          await refuseToken(
            'expiry beyond the caller token',
            `a token cannot create one that lives longer than itself: this token ends at ${notAfter.toISOString()}`,
            'expiresIn',
            'Ask for a shorter expiresIn, or sign in (a session) to create a longer-lived token.',
          );
        }
        await requireFreshMfaIfEnrolled(engine, auth, caller, 'creating an API token');
        // The person behind this: a service's token passes on the issuer of the token that made it.
        const issuedBy = caller.principal.kind === 'service' && caller.principal.via ? caller.principal.via.issuedBy : caller.principal.id;
        const forOther = owner.name !== caller.principal.id;
        const issued = await auth.issueToken(
          {
            userId: owner.id,
            name: body.name,
            scopes: body.scopes,
            expiresInMs,
            issuedBy,
            ...(notAfter ? { notAfter } : {}),
            ...(caller.via === 'token' ? { mintedBy: caller.tokenId! } : {}),
          },
          caller.principal.id,
          (value) => ({
            ...viaData(caller.principal),
            user: owner.name,
            scopes: body.scopes,
            expiresAt: value.expiresAt?.toISOString() ?? null,
            issuedBy,
            ...(forOther ? { severity: 'high' } : {}),
          }),
        );
        return reply
          .code(201)
          .send({ id: issued.id, user: owner.name, token: issued.token, name: body.name, scopes: body.scopes, expiresAt: iso(issued.expiresAt) });
      },
    );

    app.delete(
      '/api/v1/tokens/:id',
      {
        config: { auth: { scope: 'read' } },
        schema: {
          tags: ['auth'],
          summary: 'Revoke a token (yours, or any as admin)',
          security: [{ bearer: [] }, { session: [] }],
          params: z.object({ id: boundedText(64) }),
          response: { 200: z.object({ revoked: z.boolean() }), ...errors },
        },
      },
      async (request) => {
        const caller = callerOf(request);
        const token = await auth.findTokenOwner(request.params.id);
        if (!token || (token.name !== caller.principal.id && !caller.scopes.includes('admin'))) {
          return refuse(
            engine,
            {
              caller: caller.principal,
              route: '/api/v1/tokens/:id',
              reason: token ? 'not the owner' : 'unknown token',
              action: 'auth.refused',
              data: { tokenId: request.params.id.slice(0, 64) },
            },
            new LapseError('not_found', `there is no token ${request.params.id.slice(0, 64)}`),
          );
        }
        const revoked = await auth.revokeToken(token.id, caller.principal.id, { user: token.name });
        return { revoked };
      },
    );

    app.post(
      '/api/v1/auth/cli/token',
      {
        config: { auth: { public: '`lapse login`: the one-time code with its PKCE verifier is the credential' } },
        schema: {
          tags: ['auth'],
          summary: '`lapse login`: trade the one-time code (with the PKCE verifier) for an API token',
          body: cliTokenBody,
          response: { 201: issuedView, ...errors },
        },
      },
      async (request, reply) => {
        try {
          const issued = await auth.redeemCliLoginCode(request.body, engine.config.roles, CLI_TOKEN_LIFETIME_MS);
          return reply
            .code(201)
            .send({ id: issued.id, user: issued.user, token: issued.token, name: request.body.name, scopes: issued.scopes, expiresAt: iso(issued.expiresAt) });
        } catch (error) {
          if (isLapseError(error, 'unauthenticated'))
            await engine.recordSecurityEvent({
              action: 'auth.refused',
              actor: 'anonymous',
              data: { route: '/api/v1/auth/cli/token', reason: 'cli code', ip: request.ip },
            });
          throw error;
        }
      },
    );
  };
}
