import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify from 'fastify';
import { afterAll, describe, expect, it } from 'vitest';
import type { Engine } from '../../engine/index.js';
import { registerSecurityHeaders } from '../security-headers.js';
import { PORTAL_CSP, portalRoutes } from './portal.js';

/** The portal route on its own, over a scratch build directory (the browser suites use the real build). */
describe('serving the portal', () => {
  const dirs: string[] = [];
  afterAll(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });
  // NB. Only engine.config.auth.publicUrl is read (the security headers' HSTS).
  const engineAt = (publicUrl: string | undefined) => ({ config: { auth: { publicUrl } } }) as unknown as Engine;
  const serve = async (build: boolean, publicUrl?: string) => {
    const parent = mkdtempSync(join(tmpdir(), 'lapse-portal-'));
    dirs.push(parent);
    const root = join(parent, 'dist');
    mkdirSync(root);
    if (build) {
      mkdirSync(join(root, 'assets'));
      writeFileSync(join(root, 'index.html'), '<!doctype html><div id="root"></div><script type="module" src="/assets/index-abc.js"></script>');
      writeFileSync(join(root, 'assets', 'index-abc.js'), 'console.log(1)');
      writeFileSync(join(root, 'favicon.svg'), '<svg/>');
      writeFileSync(join(root, '..', 'secret.txt'), 'not for the web');
    }
    const app = Fastify();
    // As in the server: every response's headers come from there, the portal adds its CSP.
    await registerSecurityHeaders(app, engineAt(publicUrl));
    await app.register(portalRoutes(engineAt(publicUrl), { root }));
    await app.ready();
    return app;
  };

  it('answers every client route with index.html, never cached, under the CSP and hardening headers', async () => {
    const app = await serve(true, 'https://lapse.example.com');
    for (const url of ['/', '/access', '/requests/req_0abc?x=1', '/admin/audit']) {
      const response = await app.inject({ method: 'GET', url });
      expect(response.statusCode).toBe(200);
      expect(response.body).toContain('<div id="root">');
      expect(response.headers['content-security-policy']).toBe(PORTAL_CSP);
      expect(response.headers['cache-control']).toBe('no-cache');
      expect(response.headers['x-frame-options']).toBe('DENY');
      expect(response.headers['x-content-type-options']).toBe('nosniff');
      expect(response.headers['strict-transport-security']).toContain('max-age=');
    }
    expect(PORTAL_CSP).toMatch(/script-src 'self';/);
    await app.close();
  });

  it('serves hashed assets as immutable, top-level files briefly cached, and nothing outside the build', async () => {
    const app = await serve(true);
    const asset = await app.inject({ method: 'GET', url: '/assets/index-abc.js' });
    expect(asset.statusCode).toBe(200);
    expect(asset.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    expect(asset.headers['strict-transport-security']).toBeUndefined();
    expect((await app.inject({ method: 'GET', url: '/favicon.svg' })).headers['cache-control']).toBe('public, max-age=3600');
    for (const url of ['/assets/missing.js', '/assets/..%2f..%2fsecret.txt', '/assets/../../secret.txt', '/..%2fsecret.txt']) {
      const response = await app.inject({ method: 'GET', url });
      expect(response.body, url).not.toContain('not for the web');
    }
    expect((await app.inject({ method: 'GET', url: '/assets/missing.js' })).statusCode).toBe(404);
    await app.close();
  });

  it('leaves the API, sign-in and operations paths to their own 404', async () => {
    const app = await serve(true);
    for (const url of ['/api/v1/nothing', '/api', '/auth/nothing', '/healthz/x', '/metrics']) {
      expect((await app.inject({ method: 'GET', url })).statusCode, url).toBe(404);
    }
    await app.close();
  });

  it('says how to build the portal when there is no build', async () => {
    const app = await serve(false);
    const response = await app.inject({ method: 'GET', url: '/' });
    expect(response.statusCode).toBe(503);
    expect(response.body).toContain('npm run build:web');
    await app.close();
  });
});
