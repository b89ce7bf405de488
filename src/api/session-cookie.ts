import type { FastifyReply } from 'fastify';
import { isHttps, sessionCookieName } from '../auth/index.js';
import type { AuthConfig } from '../config/types.js';

/**
 * The session cookie: HttpOnly (scripts cannot read it), SameSite=Lax (not sent on cross-site
 * POSTs), Path=/, and Secure with the `__Host-` prefix when Lapse is served over https.
 */
export function setSessionCookie(reply: FastifyReply, auth: AuthConfig, secret: string, expiresAt: Date): void {
  reply.setCookie(sessionCookieName(auth), secret, { httpOnly: true, sameSite: 'lax', path: '/', secure: isHttps(auth), expires: expiresAt });
}

export function clearSessionCookie(reply: FastifyReply, auth: AuthConfig): void {
  reply.clearCookie(sessionCookieName(auth), { httpOnly: true, sameSite: 'lax', path: '/', secure: isHttps(auth) });
}
