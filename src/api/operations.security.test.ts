import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeEachStore } from '../../test/support/stores.js';
import { startEngine, type TestEngine } from '../../test/support/engine.js';
import { buildApiServer, type ApiServer } from './index.js';
import { authFor } from '../../test/support/auth-service.js';

describeEachStore('operations endpoints', ({ store }) => {
  let t: TestEngine;
  let app: ApiServer;
  beforeAll(async () => {
    t = await startEngine(store());
    app = await buildApiServer({ engine: t.engine, auth: authFor(t.engine), version: 'test' });
  });
  afterAll(async () => {
    await app.close();
    await t.stop();
  });

  it('answers /healthz', async () => {
    const res = await app.inject({ method: 'GET', url: '/healthz' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ status: 'ok' });
  });

  it('is ready when the database, migrations and scheduler are', async () => {
    await new Promise((resolve) => setTimeout(resolve, 300)); // one scheduler round
    const res = await app.inject({ method: 'GET', url: '/readyz' });
    // Targets are not checked here (lapse serve runs the checks): pending, and not part of readiness.
    expect(res.json()).toEqual({
      status: 'ready',
      checks: { database: 'ok', migrations: 'ok', scheduler: 'ok' },
      targets: { 'prod-db': 'pending', flaky: 'pending' },
    });
    expect(res.statusCode).toBe(200);
  });

  it('exports the overdue-revocation metric for alerting', async () => {
    const res = await app.inject({ method: 'GET', url: '/metrics' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/text\/plain/);
    expect(res.body).toMatch(/^lapse_revocations_overdue \d+$/m);
    expect(res.body).toMatch(/^lapse_jobs\{kind="expire"\} \d+$/m);
  });

  it('publishes an OpenAPI 3.1 document', async () => {
    const res = await app.inject({ method: 'GET', url: '/api/openapi.json' });
    const doc = res.json() as { openapi: string; paths: Record<string, unknown> };
    expect(doc.openapi).toBe('3.1.0');
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining(['/healthz', '/readyz', '/metrics', '/api/v1/requests', '/api/v1/grants/{id}/credentials', '/api/v1/events']),
    );
    // Every operation documents its responses (generated from the zod schemas that validate them).
    for (const [path, operations] of Object.entries(doc.paths as Record<string, Record<string, { responses?: object }>>)) {
      for (const [method, operation] of Object.entries(operations)) expect(operation.responses, `${method} ${path}`).toBeDefined();
    }
  });

  it('serves a browsable page over the OpenAPI document, without third-party scripts', async () => {
    const page = await app.inject({ method: 'GET', url: '/api/docs/' });
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toMatch(/text\/html/);
    expect(page.body).not.toMatch(/https?:\/\/(?!127\.0\.0\.1)[a-z0-9.-]+\/[^"']*\.js/);
  });

  it('answers unknown routes and methods with a problem document, not a stack trace', async () => {
    const res = await app.inject({ method: 'GET', url: '/api/v1/nothing-here?x=1' });
    expect(res.statusCode).toBe(404);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(res.json()).toMatchObject({ status: 404, code: 'not_found', title: 'Not found', detail: 'no route GET /api/v1/nothing-here' });
    const post = await app.inject({ method: 'POST', url: '/healthz', payload: { a: 1 } });
    expect(post.statusCode).toBe(404);
  });

  it('reports a stalled scheduler as not ready', async () => {
    await t.engine.scheduler.stop();
    const stalled = Object.create(t.engine.scheduler, { lastRoundAt: { value: Date.now() - 60_000 } });
    const probe = await buildApiServer({ auth: authFor(t.engine), engine: Object.create(t.engine, { scheduler: { value: stalled } }), version: 'test' });
    const res = await probe.inject({ method: 'GET', url: '/readyz' });
    expect(res.statusCode).toBe(503);
    expect(res.json()).toMatchObject({ status: 'not_ready', checks: { scheduler: 'stalled' } });
    await probe.close();
  });
});
