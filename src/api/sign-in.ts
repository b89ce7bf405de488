import type { FastifyReply, FastifyRequest } from 'fastify';
import { auditedChange, createSession, type NewSession, type SignInMethod, type SignInUser } from '../auth/index.js';
import type { Engine } from '../engine/index.js';
import { setSessionCookie } from './session-cookie.js';

/**
 * Ends a successful sign-in the same way for every method: a new session (never a reused one, so
 * a planted cookie gains nothing), its cookie, and one `auth.login` audit event.
 */
export async function startSession(
  engine: Engine,
  request: FastifyRequest,
  reply: FastifyReply,
  user: SignInUser,
  method: SignInMethod,
  data: Record<string, unknown> = {},
): Promise<NewSession> {
  const auth = engine.config.auth;
  const session = await auditedChange(engine.store.db, async (tx, now, audit) => {
    const created = await createSession(tx, { userId: user.id, method, ip: request.ip, userAgent: request.headers['user-agent'] }, auth.sessions, now);
    audit({ action: 'auth.login', actor: user.name, subject: created.id, data: { method, ip: request.ip, ...data } });
    return created;
  });
  setSessionCookie(reply, auth, session.secret, session.expiresAt);
  return session;
}
