import { readFileSync } from 'node:fs';
import Fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPgliteStore } from '../../test/support/stores.js';
import { startEngine, type TestEngine } from '../../test/support/engine.js';
import type { Store } from '../store/index.js';
import { declaredRoutes, routeAuthorization, type DeclaredRoute } from './authorization.js';
import { buildApiServer, type ApiServer } from './index.js';
import { authFor } from '../../test/support/auth-service.js';

/** Routes of third-party plugins: the browsable API documentation (@fastify/swagger-ui), public by nature. */
const isSwaggerUi = (route: DeclaredRoute) => route.url === '/api/docs' || route.url.startsWith('/api/docs/');

/** A path for a route, its parameters filled with well-formed values (none of them exist). */
function pathOf(url: string): string {
  const id = url.includes('/grants/') ? 'grt_0' : url.includes('/requests/') || url.includes('/break-glass/') ? 'req_0' : 'x';
  return url.replace(':id', id).replace(':target', 'prod-db').replace('*', '');
}

/** The routes docs/authorization.md lists, as "METHOD /path". */
function documentedRoutes(): Set<string> {
  const text = readFileSync(new URL('../../docs/authorization.md', import.meta.url), 'utf8');
  return new Set([...text.matchAll(/^\| `(GET|POST|PUT|PATCH|DELETE) ([^`]+)`/gm)].map((m) => `${m[1]} ${m[2]}`));
}

/**
 * Every route declares who may call it, docs/authorization.md lists every route, and every route
 * that needs a credential answers 401 without one, whatever else it was sent.
 */
describe('route authorization (every route)', () => {
  let store: Store;
  let t: TestEngine;
  let app: ApiServer;
  let routes: readonly DeclaredRoute[];
  beforeAll(async () => {
    store = await openPgliteStore();
    t = await startEngine(store);
    app = await buildApiServer({ engine: t.engine, auth: authFor(t.engine), version: 'test' });
    routes = declaredRoutes(app).filter((route) => route.method !== 'HEAD' && !isSwaggerUi(route));
  });
  afterAll(async () => {
    await app?.close();
    await t?.stop();
    await store?.close();
  });

  it('finds the route table, and a declared rule on every route', () => {
    expect(routes.length).toBeGreaterThan(50);
    expect(routes.filter((route) => route.auth === undefined).map((route) => `${route.method} ${route.url}`)).toEqual([]);
  });

  it('lists every route, and no other, in docs/authorization.md', () => {
    const documented = documentedRoutes();
    const registered = new Set(routes.map((route) => `${route.method} ${route.url}`));
    expect([...registered].filter((route) => !documented.has(route))).toEqual([]);
    expect([...documented].filter((route) => !registered.has(route))).toEqual([]);
  });

  it('answers 401 to every route that needs a credential when none is sent (even with an empty body)', async () => {
    const failures: string[] = [];
    for (const route of routes) {
      const auth = route.auth;
      if (!auth || 'public' in auth || auth.optional) continue;
      const res = await app.inject({
        method: route.method as 'GET',
        url: pathOf(route.url),
        ...(route.method === 'GET' || route.method === 'DELETE' ? {} : { payload: {} }),
      });
      if (res.statusCode !== 401) failures.push(`${route.method} ${route.url}: ${res.statusCode}`);
    }
    expect(failures).toEqual([]);
  });

  it('answers a visitor on an optional route without auditing them, and 401 to a bad credential', async () => {
    for (const route of routes.filter((r) => r.auth && !('public' in r.auth) && r.auth.optional)) {
      expect((await app.inject({ method: route.method as 'GET', url: pathOf(route.url) })).statusCode).toBe(200);
      expect(
        (await app.inject({ method: route.method as 'GET', url: pathOf(route.url), headers: { authorization: 'Bearer lapse_not-a-token' } })).statusCode,
      ).toBe(401);
    }
  });

  it('refuses to start a server with an API route that declares no rule', async () => {
    const bare = Fastify();
    await bare.register(routeAuthorization(t.engine, authFor(t.engine)));
    await expect(
      bare.register(async (child) => {
        child.get('/api/v1/undeclared', async () => ({}));
      }),
    ).rejects.toThrow(/declares no authorization/);
    await bare.close();
  });
});
