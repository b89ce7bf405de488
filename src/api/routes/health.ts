import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Engine } from '../../engine/index.js';

const healthSchema = z.object({ status: z.literal('ok') });
const readySchema = z.object({
  status: z.enum(['ready', 'not_ready']),
  checks: z.object({
    database: z.enum(['ok', 'unreachable']),
    migrations: z.enum(['ok', 'pending', 'unknown']),
    scheduler: z.enum(['ok', 'stalled']),
  }),
  targets: z
    .record(z.string(), z.enum(['ok', 'failed', 'pending']))
    .describe(
      'The latest target check of each target (pending: not checked since start or reload). Informational: a failing target does not make the server unready; the reason is in the log, `lapse target check` and the admin portal.',
    ),
});

/**
 * Liveness and readiness for load balancers and orchestrators. Unauthenticated by design; they
 * reveal only up/down states (and target names with their check state).
 */
export function healthRoutes(engine: Engine): FastifyPluginAsyncZod {
  return async (app) => {
    app.get(
      '/healthz',
      {
        config: { auth: { public: 'liveness for load balancers: says nothing about the data' } },
        schema: { tags: ['operations'], summary: 'The process is up', response: { 200: healthSchema } },
      },
      async () => ({ status: 'ok' as const }),
    );

    app.get(
      '/readyz',
      {
        config: { auth: { public: 'readiness for load balancers: says nothing about the data' } },
        schema: { tags: ['operations'], summary: 'Database reachable, migrations applied, scheduler alive', response: { 200: readySchema, 503: readySchema } },
      },
      async (_request, reply) => {
        const { database, migrations } = await engine.read.databaseHealth();
        // NB. The scheduler completes a round at least every poll interval; three missed rounds
        // (or 10 s) mean it is stuck, and this replica should not receive traffic.
        const stallMs = Math.max(10_000, 3 * engine.config.scheduler.pollIntervalMs);
        const scheduler = Date.now() - engine.scheduler.lastRoundAt < stallMs ? ('ok' as const) : ('stalled' as const);
        const ready = database === 'ok' && migrations === 'ok' && scheduler === 'ok';
        // NB. States only, never the reason: a failure message can name hosts and accounts.
        const targets = Object.fromEntries(
          engine.targetChecks().map((t) => [t.target, t.check === null ? ('pending' as const) : t.check.ok ? ('ok' as const) : ('failed' as const)]),
        );
        return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not_ready', checks: { database, migrations, scheduler }, targets });
      },
    );
  };
}
