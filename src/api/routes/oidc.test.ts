import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEngine, type TestEngine } from '../../../test/support/engine.js';
import { signInThroughOidc } from '../../../test/support/oidc-login.js';
import { startOidcProvider, type TestOidcProvider, type TestOidcUser } from '../../../test/support/oidc-provider.js';
import { configWithAuth, countAudit, createLocalUser } from '../../../test/support/sign-in.js';
import { openTestStore, type OpenedStore } from '../../../test/support/stores.js';
import { buildApiServer, type ApiServer } from '../index.js';
import { authFor } from '../../../test/support/auth-service.js';

// NB. PGlite only: this suite is about the protocol with a real provider; the session and user
// storage it relies on runs on both backends in auth.test.ts.
describe('single sign-on with a real OpenID provider', () => {
  const users: Record<string, TestOidcUser> = {
    alice: { groups: ['sre', 'oncall'] },
    bob: { groups: ['sre-leads'] },
    root: { groups: ['admins'] },
    mallory: { groups: ['contractors'] },
  };
  let idp: TestOidcProvider;
  let opened: OpenedStore;
  let t: TestEngine;
  let app: ApiServer;
  let base = '';
  const dir = mkdtempSync(join(tmpdir(), 'lapse-oidc-'));

  beforeAll(async () => {
    idp = await startOidcProvider({ users });
    writeFileSync(join(dir, 'client-secret'), idp.clientSecret);
    opened = await openTestStore('pglite');
    t = await startEngine(opened.store, {
      yaml: configWithAuth(
        `oidc:\n  issuer: ${idp.issuer}\n  clientId: ${idp.clientId}\n  clientSecret: \${file:${join(dir, 'client-secret')}}\n  allowInsecureHttp: true`,
      ),
    });
    app = await buildApiServer({ engine: t.engine, auth: authFor(t.engine), version: 'test' });
    const address = await app.listen({ port: 0, host: '127.0.0.1' });
    base = address;
    await createLocalUser(opened.store, 'carol', ['security']);
  });
  afterAll(async () => {
    await app?.close();
    await t?.stop();
    await opened?.close();
    await idp?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const whoami = (signIn: { cookieName: string; cookie: string }) =>
    fetch(`${base}/api/v1/auth/session`, { headers: { cookie: `${signIn.cookieName}=${signIn.cookie}` } });

  it('signs a user in with code + PKCE (S256), state and nonce, maps groups from the claim, and lands on returnTo', async () => {
    const signIn = await signInThroughOidc(base, 'alice', { returnTo: '/requests?mine=1' });
    expect(signIn.landedAt).toBe('/requests?mine=1');
    const me = (await (await whoami(signIn)).json()) as Record<string, unknown>;
    expect(me).toMatchObject({ principal: { id: 'alice', kind: 'user', groups: ['sre', 'oncall'] }, via: 'session', roles: [], csrfToken: signIn.csrfToken });
    const request = idp.authorizationRequests.at(-1)!;
    expect(request.get('code_challenge_method')).toBe('S256');
    expect(request.get('code_challenge')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(request.get('state')).toBeTruthy();
    expect(request.get('nonce')).toBeTruthy();
    expect(request.get('scope')).toBe('openid profile email');
    const row = await opened.store.db.selectFrom('users').select(['source', 'external_id', 'email']).where('name', '=', 'alice').executeTakeFirstOrThrow();
    // The verified email claim is where alice's notifications go.
    expect(row).toEqual({ source: 'oidc', external_id: `${idp.issuer}#alice`, email: 'alice@example.test' });
  });

  it('refreshes groups at every sign-in, and admin rights follow roles.admins', async () => {
    users.bob = { groups: ['sre-leads', 'admins'] };
    const first = (await (await whoami(await signInThroughOidc(base, 'bob'))).json()) as { principal: { groups: string[] }; roles: string[]; scopes: string[] };
    expect(first.principal.groups).toEqual(['sre-leads', 'admins']);
    expect(first.roles).toEqual(['admin']);
    users.bob = { groups: ['sre-leads'] };
    const second = (await (await whoami(await signInThroughOidc(base, 'bob'))).json()) as {
      principal: { groups: string[] };
      roles: string[];
      scopes: string[];
    };
    expect(second.principal.groups).toEqual(['sre-leads']);
    expect(second.roles).toEqual([]);
    expect(second.scopes).not.toContain('admin');
  });

  it("signs out: the session ends and the IdP's end-session URL is returned", async () => {
    const signIn = await signInThroughOidc(base, 'alice');
    const res = await fetch(`${base}/api/v1/auth/logout`, {
      method: 'POST',
      headers: { cookie: `${signIn.cookieName}=${signIn.cookie}`, 'x-csrf-token': signIn.csrfToken },
    });
    expect(res.status).toBe(200);
    const { logoutUrl } = (await res.json()) as { logoutUrl: string };
    const url = new URL(logoutUrl);
    expect(`${url.origin}${url.pathname}`).toBe(`${idp.issuer}/session/end`);
    expect(url.searchParams.get('client_id')).toBe(idp.clientId);
    expect(url.searchParams.get('post_logout_redirect_uri')).toBe(`${base}/`);
    expect((await whoami(signIn)).status).toBe(401);
  });

  const rejected: [string, Parameters<TestOidcProvider['mutateNextIdToken']>[0], RegExp][] = [
    ['a tampered ID token (payload changed, signature kept)', 'tamper', /signature/i],
    ['an expired ID token', (c) => ({ ...c, exp: Math.floor(Date.now() / 1000) - 3600, iat: Math.floor(Date.now() / 1000) - 7200 }), /"exp"/],
    ['an ID token from another issuer', (c) => ({ ...c, iss: 'http://127.0.0.1:1/other-issuer' }), /"iss"/],
    ['an ID token for another audience', (c) => ({ ...c, aud: 'some-other-client' }), /"aud"/],
    ['an ID token with another nonce', (c) => ({ ...c, nonce: 'not-the-nonce-we-sent' }), /nonce/],
  ];
  for (const [what, mutation, because] of rejected) {
    it(`rejects ${what}, creates no session, and audits it`, async () => {
      const before = await countAudit(opened.store, 'auth.oidc_failed');
      idp.mutateNextIdToken(mutation);
      await expect(signInThroughOidc(base, 'mallory')).rejects.toThrow(/did not end with a session/);
      expect(await countAudit(opened.store, 'auth.oidc_failed')).toBe(before + 1);
      const last = await sql<{
        payload: string;
      }>`SELECT payload FROM audit_events WHERE payload LIKE '%"action":"auth.oidc_failed"%' ORDER BY seq DESC LIMIT 1`.execute(opened.store.db);
      expect((JSON.parse(last.rows[0]!.payload) as { data: { message: string } }).data.message).toMatch(because);
      const { rows } = await sql<{ n: string }>`SELECT count(*) AS n FROM users WHERE name IN ('mallory', 'root')`.execute(opened.store.db);
      expect(Number(rows[0]!.n)).toBe(0);
    });
  }

  it('rejects a callback whose state was changed', async () => {
    const before = await countAudit(opened.store, 'auth.oidc_failed');
    const rewrite = (url: URL) => {
      if (url.pathname === '/auth/oidc/callback') url.searchParams.set('state', 'forged-state-value');
      return url;
    };
    await expect(signInThroughOidc(base, 'mallory', { rewrite })).rejects.toThrow(/did not end with a session/);
    expect(await countAudit(opened.store, 'auth.oidc_failed')).toBe(before + 1);
  });

  it('rejects a callback in a browser that did not start the sign-in (no flow cookie)', async () => {
    let stolen = '';
    const rewrite = (url: URL) => {
      if (url.pathname === '/auth/oidc/callback' && !stolen) {
        stolen = url.href;
        return new URL(`${base}/healthz`); // the victim's browser never reaches the callback
      }
      return url;
    };
    await signInThroughOidc(base, 'mallory', { rewrite }).catch(() => undefined);
    expect(stolen).toContain('code=');
    const res = await fetch(stolen, { redirect: 'manual' });
    expect(res.status).toBe(401);
    expect(res.headers.get('set-cookie') ?? '').not.toContain('lapse_session=');
  });

  it('never redirects off the server after sign-in (open redirect)', async () => {
    for (const returnTo of ['https://evil.example/', '//evil.example/x', '/\\evil.example', 'javascript:alert(1)', '/%0d%0aSet-Cookie:x=y']) {
      const signIn = await signInThroughOidc(base, 'alice', { returnTo });
      expect(signIn.landedAt.startsWith('/')).toBe(true);
      expect(signIn.landedAt.startsWith('//')).toBe(false);
      expect(new URL(signIn.landedAt, base).origin).toBe(new URL(base).origin);
    }
  });

  it('refuses an IdP account whose name belongs to a local user (no takeover)', async () => {
    users.carol = { groups: ['admins'] };
    await expect(signInThroughOidc(base, 'carol')).rejects.toThrow(/did not end with a session/);
    const carol = await opened.store.db.selectFrom('users').select(['source', 'groups']).where('name', '=', 'carol').executeTakeFirstOrThrow();
    expect(carol).toEqual({ source: 'local', groups: ['security'] });
  });
});
