import type { FastifyRequest } from 'fastify';
import { effectiveTokenScopes, hasScope, sessionCookieName, sessionScopes, type AuthService, type TokenScope } from '../auth/index.js';
import { sameSecret } from '../auth/secrets.js';
import { LapseError } from '../domain/errors.js';
import type { Principal } from '../domain/principal.js';
import type { Engine } from '../engine/index.js';
import { rememberCaller, stepUpFromHeader } from './step-up.js';

/** Who is calling, how, and what they may do. */
export interface Caller {
  /** Through a token, `principal.via` names the token and who issued it. */
  readonly principal: Principal;
  /** What the caller may do now: a token's scopes never exceed what its owner's roles allow today. */
  readonly scopes: readonly TokenScope[];
  readonly via: 'token' | 'session';
  readonly tokenId?: string;
  /** When the token ends (null: never); undefined for sessions. */
  readonly tokenExpiresAt?: Date | null;
  readonly sessionId?: string;
  /** When a second factor was last verified for this caller (sessions), or null. */
  readonly mfaAt: Date | null;
}

const UNSAFE_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

function routeOf(request: FastifyRequest): string {
  return request.routeOptions.url ?? request.url.split('?')[0] ?? '';
}

/**
 * Who is calling: `Authorization: Bearer <API token>`, or else the session cookie. With a cookie,
 * unsafe methods need the session's CSRF token in `X-CSRF-Token` (a page on another site can make
 * the browser send the cookie, but cannot read the token). Every refusal is audited; the response
 * never says which part of a credential was wrong. The route's declared rule runs this before the
 * input is validated (src/api/authorization.ts), so an unauthenticated call is a 401 whatever it sent.
 */
export async function checkCredential(engine: Engine, auth: AuthService, request: FastifyRequest, scope: TokenScope): Promise<Caller> {
  const caller = await identify(engine, auth, request);
  if (!hasScope(caller.scopes, scope)) {
    await engine.recordSecurityEvent({
      action: 'auth.refused',
      actor: caller.principal.id,
      data: { route: routeOf(request), reason: `missing scope ${scope}`, via: caller.tokenId ?? caller.sessionId },
    });
    throw new LapseError(
      'forbidden',
      caller.via === 'token' ? `this token lacks the "${scope}" scope` : `signing in does not give the "${scope}" scope to ${caller.principal.id}`,
      {
        hint: caller.via === 'token' ? `Create a token with --scope ${scope}.` : 'Admin rights come from roles.admins in the config.',
      },
    );
  }
  return caller;
}

/**
 * The second half, once the input is valid: a one-request step-up (`X-Lapse-MFA: totp <code>`,
 * for API tokens; see step-up.ts), so a code is never spent on a request that fails validation.
 */
export async function completeAuthentication(engine: Engine, auth: AuthService, request: FastifyRequest, caller: Caller): Promise<Caller> {
  const stepped = await stepUpFromHeader(engine, auth, request, caller);
  rememberCaller(request, stepped);
  return stepped;
}

/**
 * Whether the credential a long-lived request (an event stream) came with still holds, judged as
 * at a new request (revoked, expired, signed out, user disabled, roles in force) but without
 * auditing or touching the session: a stream left open is not activity. The caller as they are
 * now (groups and scopes may have changed), or null.
 */
export async function recheckCaller(engine: Engine, auth: AuthService, request: FastifyRequest, scope: TokenScope): Promise<Caller | null> {
  let caller: Caller;
  try {
    caller = await identify(engine, auth, request, { quiet: true });
  } catch (error) {
    if (error instanceof LapseError && (error.code === 'unauthenticated' || error.code === 'forbidden')) return null;
    throw error;
  }
  return hasScope(caller.scopes, scope) ? caller : null;
}

async function identify(engine: Engine, auth: AuthService, request: FastifyRequest, options: { quiet?: boolean } = {}): Promise<Caller> {
  const refuse = async (reason: string, actor = 'anonymous', extra: Record<string, unknown> = {}): Promise<never> => {
    if (!options.quiet)
      await engine.recordSecurityEvent({ action: 'auth.refused', actor, data: { route: routeOf(request), reason, ip: request.ip, ...extra } });
    if (reason === 'csrf') {
      throw new LapseError('forbidden', 'this request needs the CSRF token of your session', {
        where: 'X-CSRF-Token',
        hint: 'Send the csrfToken from sign-in (or GET /api/v1/auth/session) in the X-CSRF-Token header.',
      });
    }
    throw new LapseError(
      'unauthenticated',
      reason === 'no credentials'
        ? 'this endpoint needs you to sign in or an API token'
        : 'your credentials are not valid (unknown, expired, revoked or signed out)',
      {
        hint: 'Sign in again (`lapse login`), or send `Authorization: Bearer <token>`.',
      },
    );
  };

  const header = request.headers.authorization;
  if (header !== undefined) {
    const token = header.startsWith('Bearer ') ? header.slice(7).trim() : '';
    const identity = token ? await auth.authenticateToken(token) : null;
    if (!identity) return refuse('invalid token');
    return {
      principal: identity.principal,
      // NB. Judged against the roles in force at every request, as a session's scopes are.
      scopes: effectiveTokenScopes(identity.scopes, identity.principal, engine.config.roles),
      via: 'token',
      tokenId: identity.tokenId,
      tokenExpiresAt: identity.expiresAt,
      mfaAt: null,
    };
  }

  const settings = engine.config.auth;
  const cookie = request.cookies?.[sessionCookieName(settings)];
  if (!cookie) return refuse('no credentials');
  const session = await auth.findSession(cookie, settings.sessions);
  if (!session) return refuse('invalid session');
  if (UNSAFE_METHODS.has(request.method)) {
    const presented = request.headers['x-csrf-token'];
    if (typeof presented !== 'string' || !sameSecret(presented, session.csrfToken)) {
      return refuse('csrf', session.principal.id, { via: session.id });
    }
  }
  if (!options.quiet) await auth.touchSession(session, settings.sessions);
  return {
    principal: session.principal,
    scopes: sessionScopes(session.principal, engine.config.roles),
    via: 'session',
    sessionId: session.id,
    mfaAt: session.mfaAt,
  };
}
