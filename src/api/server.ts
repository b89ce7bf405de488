import type { KeyObject } from 'node:crypto';
import fastifyCookie from '@fastify/cookie';
import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import Fastify, { LogController, type FastifyError } from 'fastify';
import { jsonSchemaTransform, serializerCompiler, validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import type { Logger } from 'pino';
import type { AuthService } from '../auth/index.js';
import type { Engine } from '../engine/index.js';
import { routeAuthorization } from './authorization.js';
import { errorHandler, notFoundHandler } from './problem.js';
import { registerSecurityHeaders } from './security-headers.js';
import { withStepUpGuidance } from './step-up.js';
import { accessRoutes } from './routes/access.js';
import { findingRoutes } from './routes/findings.js';
import { reviewRoutes } from './routes/reviews.js';
import { reportRoutes } from './routes/reports.js';
import { alertRoutes } from './routes/alerts.js';
import { notificationRoutes } from './routes/notifications.js';
import { slackRoutes } from './routes/slack.js';
import { webhookRoutes } from './routes/webhooks.js';
import { vaultRoutes } from './routes/vault.js';
import { auditRoutes } from './routes/audit.js';
import { auditVerifyRoutes } from './routes/audit-verify.js';
import { auditExportRoutes } from './routes/audit-exports.js';
import { configRoutes } from './routes/config.js';
import { eventRoutes, type EventStreamOptions } from './routes/events.js';
import { grantRoutes } from './routes/grants.js';
import { requestRoutes } from './routes/requests.js';
import { sshRoutes } from './routes/ssh.js';
import { statsRoutes } from './routes/stats.js';
import { healthRoutes } from './routes/health.js';
import { metricsRoutes } from './routes/metrics.js';
import { mfaRoutes } from './routes/mfa.js';
import { portalRoutes } from './routes/portal.js';
import { signInRoutes } from './routes/sign-in.js';
import { userRoutes } from './routes/users.js';
import { scimRoutes } from './routes/scim.js';

export interface ApiServerOptions {
  readonly engine: Engine;
  /** Sign-in, sessions, API tokens and MFA, bound to the database where Lapse is composed. */
  readonly auth: AuthService;
  readonly logger?: Logger;
  readonly version: string;
  /**
   * The checkpoint public keys audit verification trusts, from `trustedCheckpointKeys` (`lapse
   * serve` passes its runtime's). Default: the public half of the config's audit.signingKey.
   */
  readonly checkpointKeys?: readonly KeyObject[];
  /** Event streams (`GET /api/v1/events`): how often an open stream's credential is checked again. */
  readonly eventStream?: EventStreamOptions;
}

/**
 * The HTTP server: every route declares zod schemas for what it accepts and returns (validated
 * both ways), which also produce the OpenAPI 3.1 document at /api/openapi.json; every error is a
 * problem document (RFC 9457).
 */
export async function buildApiServer(options: ApiServerOptions) {
  const app = Fastify({
    ...(options.logger ? { loggerInstance: options.logger } : { logger: false }),
    bodyLimit: 1024 * 1024,
    // Behind a reverse proxy, the client address (login limits, audit, policy `client.ip`) comes
    // from X-Forwarded-For, believed only from the proxies named in auth.trustedProxies.
    ...(options.engine.config.auth.trustedProxies.length > 0 ? { trustProxy: [...options.engine.config.auth.trustedProxies] } : {}),
    // Never log requests by default: URLs and headers can carry tokens.
    logController: new LogController({ disableRequestLogging: true }),
  }).withTypeProvider<ZodTypeProvider>();
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  // A step-up refusal gets the caller's factors and the ways to complete it (src/api/step-up.ts).
  app.setErrorHandler(async (error, request, reply) => errorHandler((await withStepUpGuidance(options.auth, request, error)) as FastifyError, request, reply));
  app.setNotFoundHandler(notFoundHandler);
  await app.register(fastifyCookie);
  await registerSecurityHeaders(app, options.engine);
  // Every route declares who may call it (config.auth); one hook applies it (src/api/authorization.ts).
  await app.register(routeAuthorization(options.engine, options.auth));

  await app.register(fastifySwagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'Lapse API', description: 'Just-in-time privileged access broker', version: options.version },
      tags: [
        { name: 'operations', description: 'Health, readiness and metrics' },
        { name: 'access', description: 'What access principals hold' },
        { name: 'reconciliation', description: 'Drift between targets and grants: findings, running a reconciliation' },
        { name: 'reviews', description: 'Access reviews: campaigns, reviewer queues, decisions (docs/reviews.md)' },
        { name: 'notifications', description: 'Notification deliveries, your notification preferences, test messages' },
        { name: 'requests', description: 'The catalogue, requests for access, reviews and break-glass' },
        { name: 'grants', description: 'Access held now: extend, release, revoke, credentials' },
        { name: 'events', description: 'Live updates (Server-Sent Events)' },
        { name: 'stats', description: 'Figures over a window of time, for the dashboard' },
        { name: 'audit', description: 'Audit search and export' },
        { name: 'config', description: 'The configuration in force (read-only)' },
        { name: 'ssh', description: 'What sshd hosts fetch for ssh targets: the CA key and the revocation list' },
        { name: 'mfa', description: 'Second factors (authenticator app, passkeys) and step-up' },
        { name: 'auth', description: 'Sign-in, sessions, sign-out and API tokens' },
      ],
      components: {
        securitySchemes: {
          bearer: { type: 'http', scheme: 'bearer', description: 'An API token from `lapse admin token create`' },
          session: {
            type: 'apiKey',
            in: 'cookie',
            name: 'lapse_session',
            description: 'The session cookie from sign-in (__Host-lapse_session over https); unsafe methods also need X-CSRF-Token',
          },
        },
      },
    },
    transform: jsonSchemaTransform,
  });
  // Before the other routes: its request counter applies to the routes registered after it.
  await app.register(metricsRoutes(options.engine));
  await app.register(healthRoutes(options.engine));
  await app.register(accessRoutes(options.engine));
  await app.register(findingRoutes(options.engine));
  await app.register(reviewRoutes(options.engine));
  await app.register(reportRoutes(options.engine, options.checkpointKeys));
  await app.register(alertRoutes(options.engine));
  await app.register(notificationRoutes(options.engine));
  await app.register(slackRoutes(options.engine));
  await app.register(webhookRoutes(options.engine));
  await app.register(vaultRoutes(options.engine, options.auth));
  await app.register(requestRoutes(options.engine));
  await app.register(grantRoutes(options.engine));
  await app.register(statsRoutes(options.engine));
  await app.register(eventRoutes(options.engine, options.auth, options.eventStream));
  await app.register(auditRoutes(options.engine));
  await app.register(auditVerifyRoutes(options.engine, options.checkpointKeys));
  await app.register(auditExportRoutes(options.engine));
  await app.register(configRoutes(options.engine));
  await app.register(sshRoutes(options.engine));
  await app.register(mfaRoutes(options.engine, options.auth));
  await app.register(signInRoutes(options.engine, options.auth));
  await app.register(userRoutes(options.engine));
  await app.register(scimRoutes(options.engine, options.auth));
  app.get('/api/openapi.json', { schema: { hide: true }, config: { auth: { public: 'the API description' } } }, async () => app.swagger());
  // A browsable page over the same document, served from the package (no CDN).
  await app.register(fastifySwaggerUi, { routePrefix: '/api/docs', staticCSP: true });
  // The portal (web/dist) at `/`, with index.html for its client routes.
  await app.register(portalRoutes(options.engine));
  await app.ready();
  return app;
}

export type ApiServer = Awaited<ReturnType<typeof buildApiServer>>;
