import type { FastifyReply, FastifyRequest } from 'fastify';
import type { AuthService, NewSession, SignInMethod, SignInUser } from '../auth/index.js';
import type { Engine } from '../engine/index.js';
import { setSessionCookie } from './session-cookie.js';

/**
 * Ends a successful sign-in the same way for every method: a new session (never a reused one, so
 * a planted cookie gains nothing), its cookie, and one `auth.login` audit event.
 */
export async function startSession(
  engine: Engine,
  auth: AuthService,
  request: FastifyRequest,
  reply: FastifyReply,
  user: SignInUser,
  method: SignInMethod,
  data: Record<string, unknown> = {},
): Promise<NewSession> {
  const settings = engine.config.auth;
  const session = await auth.startSession(user, method, { ip: request.ip, userAgent: request.headers['user-agent'] }, settings.sessions, data);
  setSessionCookie(reply, settings, session.secret, session.expiresAt);
  return session;
}
