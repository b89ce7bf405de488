import { sql } from 'kysely';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { pendingMigrations } from '../../store/index.js';
import type { Engine } from '../../engine/index.js';

const healthSchema = z.object({ status: z.literal('ok') });
const readySchema = z.object({
  status: z.enum(['ready', 'not_ready']),
  checks: z.object({
    database: z.enum(['ok', 'unreachable']),
    migrations: z.enum(['ok', 'pending', 'unknown']),
    scheduler: z.enum(['ok', 'stalled']),
  }),
});

/**
 * Liveness and readiness for load balancers and orchestrators. Unauthenticated by design; they
 * reveal only up/down states.
 */
export function healthRoutes(engine: Engine): FastifyPluginAsyncZod {
  return async (app) => {
    app.get('/healthz', { schema: { tags: ['operations'], summary: 'The process is up', response: { 200: healthSchema } } }, async () => ({ status: 'ok' as const }));

    app.get(
      '/readyz',
      { schema: { tags: ['operations'], summary: 'Database reachable, migrations applied, scheduler alive', response: { 200: readySchema, 503: readySchema } } },
      async (_request, reply) => {
        const db = engine.store.db;
        const database = await sql`SELECT 1`.execute(db).then(() => 'ok' as const, () => 'unreachable' as const);
        const migrations = database === 'ok' ? await pendingMigrations(db).then((p) => (p.length === 0 ? ('ok' as const) : ('pending' as const)), () => 'unknown' as const) : ('unknown' as const);
        // NB. The scheduler completes a round at least every poll interval; three missed rounds
        // (or 10 s) mean it is stuck, and this replica should not receive traffic.
        const stallMs = Math.max(10_000, 3 * engine.config.scheduler.pollIntervalMs);
        const scheduler = Date.now() - engine.scheduler.lastRoundAt < stallMs ? ('ok' as const) : ('stalled' as const);
        const ready = database === 'ok' && migrations === 'ok' && scheduler === 'ok';
        return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not_ready', checks: { database, migrations, scheduler } });
      },
    );
  };
}
