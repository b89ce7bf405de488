import { existsSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyReply } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { Engine } from '../../engine/index.js';
import { sendPage } from '../pages.js';

/** Where `npm run build:web` writes the portal (the same path from src/api/routes and dist/api/routes). */
export const PORTAL_DIR = fileURLToPath(new URL('../../../web/dist/', import.meta.url));

/**
 * The portal's Content-Security-Policy. Scripts only from this origin (no inline script, no eval),
 * data only from this origin's API, no framing, no plugins, no <base> tricks. Styles allow inline
 * because the component library (Mantine) and the charts set CSS variables in style attributes;
 * a style cannot run script, and every script on the page is a file we built.
 */
export const PORTAL_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "manifest-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "object-src 'none'",
].join('; ');

/** Paths the portal never answers: the API, sign-in pages and operations endpoints have their own 404s. */
const NOT_PORTAL = /^\/(api|auth|healthz|readyz|metrics)(\/|$)/;
const ASSET = /^\/assets\/[A-Za-z0-9_.-]+$/;

/**
 * Serves the built portal (web/dist) at `/`: hashed assets cached for a year, index.html for every
 * other client route (the single-page app routes itself) and never cached, so a new build shows at
 * the next load. Every response carries the CSP and the usual hardening headers.
 */
export function portalRoutes(engine: Engine, options: { root?: string } = {}): FastifyPluginAsyncZod {
  const root = options.root ?? PORTAL_DIR;
  return async (app) => {
    const built = existsSync(`${root}/index.html`);
    // Top-level files (favicon and the like) are known at start; anything else is a client route.
    const topLevel = new Set(
      built
        ? readdirSync(root, { withFileTypes: true })
            .filter((e) => e.isFile() && e.name !== 'index.html')
            .map((e) => `/${e.name}`)
        : [],
    );
    if (built) await app.register(fastifyStatic, { root, serve: false });

    // NB. nosniff, no framing, opener/resource policies and HSTS come with every response
    // (src/api/security-headers.ts); the portal widens the CSP to its own files and keeps referrers same-origin.
    const harden = (reply: FastifyReply) =>
      reply
        .header('content-security-policy', PORTAL_CSP)
        .header('referrer-policy', 'same-origin')
        .header('permissions-policy', 'camera=(), microphone=(), geolocation=(), payment=(), usb=()');

    app.get('/*', { config: { auth: { public: "the portal's static files: they hold no data" } }, schema: { hide: true } }, async (request, reply) => {
      const path = request.url.split('?')[0] ?? '/';
      if (NOT_PORTAL.test(path)) return reply.callNotFound();
      if (!built) {
        return sendPage(
          reply,
          503,
          'The portal is not built',
          '<p>This server has no built portal. Run <code>npm run build:web</code> (or <code>npm ci</code>, which builds it) and restart. The API is available at <a href="/api/docs">/api/docs</a>.</p>',
        );
      }
      harden(reply);
      if (ASSET.test(path)) return reply.header('cache-control', 'public, max-age=31536000, immutable').sendFile(path.slice(1), { cacheControl: false });
      if (topLevel.has(path)) return reply.header('cache-control', 'public, max-age=3600').sendFile(path.slice(1), { cacheControl: false });
      if (path.startsWith('/assets/')) return reply.callNotFound();
      return reply.header('cache-control', 'no-cache').type('text/html; charset=utf-8').sendFile('index.html', { cacheControl: false });
    });
  };
}
