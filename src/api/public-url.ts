import type { FastifyRequest } from 'fastify';
import type { AuthConfig } from '../config/types.js';
import { LapseError } from '../domain/errors.js';

/**
 * The URL the IdP sends browsers back to: `auth.publicUrl`, or else the address this connection
 * reached (never the Host header, which the client chooses), which is right for a server on
 * 127.0.0.1 and for tests on a random port.
 */
export function publicBaseUrl(auth: AuthConfig, request: FastifyRequest): string {
  if (auth.publicUrl) return auth.publicUrl;
  const raw = request.socket.localAddress ?? '127.0.0.1';
  const address = raw.startsWith('::ffff:') ? raw.slice(7) : raw;
  const port = request.socket.localPort;
  if (address !== '127.0.0.1' && address !== '::1') {
    throw new LapseError('config_invalid', 'auth.publicUrl is not set, and this server is not on a loopback address', {
      where: 'auth.publicUrl',
      hint: 'Set auth.publicUrl to the URL people use to reach Lapse (e.g. https://lapse.example.com).',
    });
  }
  const host = address === '::1' ? '[::1]' : address;
  return `http://${host}${port ? `:${port}` : ''}`;
}

const MAX_RETURN_TO = 2048;

/**
 * Where to go after sign-in: only a path on this server (`/requests/1?x`), never another origin,
 * a scheme-relative `//host`, a backslash trick, or control characters. Anything else becomes `/`.
 */
export function safeReturnTo(value: string | undefined): string {
  if (!value || value.length > MAX_RETURN_TO) return '/';
  // eslint-disable-next-line no-control-regex -- control characters are exactly what is refused here
  if (!value.startsWith('/') || value.startsWith('//') || value.includes('\\') || /[\u0000-\u001f\u007f]/.test(value)) return '/';
  const base = 'http://lapse.invalid';
  let parsed: URL;
  try {
    parsed = new URL(value, base);
  } catch {
    return '/';
  }
  if (parsed.origin !== base) return '/';
  return `${parsed.pathname}${parsed.search}${parsed.hash}`;
}

/**
 * Refuses a form post another site made the browser send (login CSRF): browsers add `Origin` to
 * cross-site POSTs, and it must name this server (as the browser reached it: the Host header).
 * Non-browser clients send no Origin and are not affected.
 */
export function assertSameOriginForm(request: FastifyRequest): void {
  const origin = request.headers.origin;
  if (origin === undefined) return;
  let host: string | undefined;
  try {
    host = origin === 'null' ? undefined : new URL(origin).host;
  } catch {
    host = undefined;
  }
  if (!host || host !== request.headers.host) {
    throw new LapseError('forbidden', 'this form was posted from another site', {
      where: 'Origin',
      hint: 'Open the sign-in page on this server and submit it there.',
    });
  }
}
