import fastifyHelmet from '@fastify/helmet';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FastifyBaseLogger, FastifyInstance, FastifyTypeProvider, RawServerDefault } from 'fastify';
import { isHttps } from '../auth/index.js';
import type { Engine } from '../engine/index.js';

/** HSTS: a year, subdomains too (helmet's default value). */
const HSTS = 'max-age=31536000; includeSubDomains';

/**
 * Security headers on every response (API, problems, operations endpoints, sign-in pages, portal),
 * from @fastify/helmet: nosniff, no framing, same-origin opener and resource policies, no referrer,
 * and a Content-Security-Policy that allows nothing (JSON needs nothing; the portal, the sign-in
 * pages and the API docs page send their own, wider ones). Two things helmet cannot decide:
 *
 * - HSTS only when the request came over https: `auth.publicUrl` is https, or the connection is
 *   TLS, or a proxy listed in `auth.trustedProxies` says `X-Forwarded-Proto: https` (Fastify's
 *   `request.protocol` believes the header only from those). Over plain http it means nothing to
 *   a browser and would pin a name to https by mistake.
 * - `Cache-Control: no-store` on every `/api/v1` answer that does not say otherwise: sessions,
 *   CSRF tokens, new API tokens, credentials and most of the data are not for shared caches or
 *   the browser's disk. Routes that may be cached (the SSH CA key and KRL) set their own.
 */
export async function registerSecurityHeaders<L extends FastifyBaseLogger, P extends FastifyTypeProvider>(
  app: FastifyInstance<RawServerDefault, IncomingMessage, ServerResponse, L, P>,
  engine: Engine,
): Promise<void> {
  await app.register(fastifyHelmet, {
    global: true,
    contentSecurityPolicy: {
      useDefaults: false,
      directives: { defaultSrc: ["'none'"], baseUri: ["'none'"], formAction: ["'none'"], frameAncestors: ["'none'"] },
    },
    frameguard: { action: 'deny' },
    strictTransportSecurity: false,
  });
  app.addHook('onRequest', async (request, reply) => {
    if (request.protocol === 'https' || isHttps(engine.config.auth)) reply.header('strict-transport-security', HSTS);
  });
  app.addHook('onSend', async (request, reply) => {
    if (!reply.hasHeader('cache-control') && request.url.startsWith('/api/v1/')) reply.header('cache-control', 'no-store');
  });
}
