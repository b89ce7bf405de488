import type { FastifyRequest } from 'fastify';
import { authenticateToken, type TokenIdentity, type TokenScope } from '../auth/index.js';
import { LapseError } from '../domain/errors.js';
import type { Engine } from '../engine/index.js';

/**
 * Who is calling, from `Authorization: Bearer <token>`, with the scope the route needs. Every
 * refusal is audited; the response never says which part of a token was wrong.
 */
export async function authenticate(engine: Engine, request: FastifyRequest, scope: TokenScope): Promise<TokenIdentity> {
  const header = request.headers.authorization;
  const token = header?.startsWith('Bearer ') ? header.slice(7).trim() : undefined;
  const identity = token ? await authenticateToken(engine.store.db, token) : null;
  if (!identity) {
    await engine.recordSecurityEvent({ action: 'auth.refused', actor: 'anonymous', data: { route: request.routeOptions.url ?? request.url.split('?')[0], reason: token ? 'invalid token' : 'no token', ip: request.ip } });
    throw new LapseError('unauthenticated', token ? 'the token is not valid (unknown, expired or revoked)' : 'this endpoint needs an API token', {
      hint: 'Send `Authorization: Bearer <token>`; create one with `lapse admin token create`.',
    });
  }
  if (!identity.scopes.includes(scope) && !identity.scopes.includes('admin')) {
    await engine.recordSecurityEvent({ action: 'auth.refused', actor: identity.principal.id, data: { route: request.routeOptions.url ?? '', reason: `missing scope ${scope}`, via: identity.tokenId } });
    throw new LapseError('forbidden', `this token lacks the "${scope}" scope`, { hint: `Create a token with --scope ${scope}.` });
  }
  return identity;
}
