import fastifySwagger from '@fastify/swagger';
import Fastify, { LogController } from 'fastify';
import { jsonSchemaTransform, serializerCompiler, validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import type { Logger } from 'pino';
import type { Engine } from '../engine/index.js';
import { errorHandler, notFoundHandler } from './problem.js';
import { accessRoutes } from './routes/access.js';
import { healthRoutes } from './routes/health.js';
import { metricsRoutes } from './routes/metrics.js';

export interface ApiServerOptions {
  readonly engine: Engine;
  readonly logger?: Logger;
  readonly version: string;
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
    // Never log requests by default: URLs and headers can carry tokens.
    logController: new LogController({ disableRequestLogging: true }),
  }).withTypeProvider<ZodTypeProvider>();
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  app.setErrorHandler(errorHandler);
  app.setNotFoundHandler(notFoundHandler);

  await app.register(fastifySwagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'Lapse API', description: 'Just-in-time privileged access broker', version: options.version },
      tags: [
        { name: 'operations', description: 'Health, readiness and metrics' },
        { name: 'access', description: 'What access principals hold' },
      ],
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'An API token from `lapse admin token create`' } } },
    },
    transform: jsonSchemaTransform,
  });
  await app.register(healthRoutes(options.engine));
  await app.register(metricsRoutes(options.engine));
  await app.register(accessRoutes(options.engine));
  app.get('/api/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  await app.ready();
  return app;
}

export type ApiServer = Awaited<ReturnType<typeof buildApiServer>>;
