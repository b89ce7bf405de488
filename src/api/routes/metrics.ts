import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { Gauge } from 'prom-client';
import { z } from 'zod';
import type { Engine } from '../../engine/index.js';
import { LapseMetrics } from '../metrics.js';

/**
 * Prometheus metrics (docs/operations.md#metrics). `lapse_revocations_overdue` is the one to alert
 * on: grants whose access should be gone but is not confirmed gone. Every HTTP request is counted
 * here too, so this plugin is registered before the other routes and shares the root context.
 */
export function metricsRoutes(engine: Engine): FastifyPluginAsyncZod {
  const metrics = new LapseMetrics(engine);
  const registry = metrics.registry;
  new Gauge({
    name: 'lapse_revocations_overdue',
    help: 'Grants whose access should have been removed more than a second ago but is not confirmed removed',
    registers: [registry],
    async collect() {
      this.set((await engine.stats()).overdueRevocations);
    },
  });
  new Gauge({
    name: 'lapse_vault_rotations_overdue',
    help: 'Vault accounts whose password rotation keeps failing: a past holder may still know the live password',
    registers: [registry],
    async collect() {
      this.set(await engine.overdueRotations());
    },
  });
  new Gauge({
    name: 'lapse_jobs',
    help: 'Durable timers waiting, by kind',
    labelNames: ['kind'],
    registers: [registry],
    async collect() {
      const { jobs } = await engine.stats();
      for (const [kind, count] of Object.entries(jobs)) this.set({ kind }, count);
    },
  });
  new Gauge({
    name: 'lapse_findings_open',
    help: 'Open reconciliation findings, by kind: standing (access no grant covers) or missing (granted access that is gone)',
    labelNames: ['kind'],
    registers: [registry],
    async collect() {
      for (const [kind, count] of Object.entries(await engine.openFindings())) this.set({ kind }, count);
    },
  });
  new Gauge({
    name: 'lapse_notifications_pending',
    help: 'Notification deliveries not yet sent (waiting, retrying, or held for quiet hours)',
    registers: [registry],
    async collect() {
      this.set((await engine.notifications.counts()).pending);
    },
  });
  new Gauge({
    name: 'lapse_notifications_failed',
    help: 'Notification deliveries given up after their retries, or refused by the receiving side (see GET /api/v1/notifications/deliveries?status=failed)',
    registers: [registry],
    async collect() {
      this.set((await engine.notifications.counts()).failed);
    },
  });
  new Gauge({
    name: 'lapse_scheduler_last_round_age_seconds',
    help: 'Seconds since the scheduler last completed a round',
    registers: [registry],
    collect() {
      this.set((Date.now() - engine.scheduler.lastRoundAt) / 1000);
    },
  });

  const plugin: FastifyPluginAsyncZod = async (app) => {
    const detach = metrics.attach();
    app.addHook('onClose', async () => detach());
    app.addHook('onResponse', async (request, reply) =>
      metrics.httpRequest(request.method, request.routeOptions.url, reply.statusCode, reply.elapsedTime / 1000),
    );
    app.get(
      '/metrics',
      {
        config: { auth: { public: 'Prometheus scrapes it; figures only, no names (bind or firewall it as any metrics port)' } },
        schema: { tags: ['operations'], summary: 'Prometheus metrics', response: { 200: z.string() } },
      },
      async (_request, reply) => reply.header('content-type', registry.contentType).send(await registry.metrics()),
    );
  };
  // NB. What fastify-plugin does: the hook above then applies to every route, not only this plugin's.
  Object.assign(plugin, { [Symbol.for('skip-override')]: true });
  return plugin;
}
