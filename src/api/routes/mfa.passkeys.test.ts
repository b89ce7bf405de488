import { existsSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { sql } from 'kysely';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEngine, type TestEngine } from '../../../test/support/engine.js';
import { offline } from '../../../test/support/environment.js';
import { configWithAuth, countAudit, createLocalUser, PASSWORD } from '../../../test/support/sign-in.js';
import { describeEachStore } from '../../../test/support/stores.js';
import { parseConfig } from '../../config/index.js';
import { buildApiServer, type ApiServer } from '../index.js';
import { authFor } from '../../../test/support/auth-service.js';

/**
 * Passkeys with a real browser: Debian's Chromium, driven by playwright-core, with a CTAP2 virtual
 * authenticator (Chrome DevTools Protocol `WebAuthn` domain) on a page served at the test server's
 * own http://localhost origin (a secure context). The page calls navigator.credentials with the
 * options our routes return and posts the results back, as the portal does.
 */
const CHROMIUM = process.env.LAPSE_TEST_CHROMIUM ?? '/usr/bin/chromium';
const haveChromium = existsSync(CHROMIUM);

interface ApiAnswer {
  readonly status: number;
  readonly body: Record<string, unknown> | null;
}

/** Installed in every page: same-origin JSON calls with the session's CSRF token. */
const PAGE_HELPERS = `
window.api = async (method, path, body) => {
  const headers = window.csrf ? { 'x-csrf-token': window.csrf } : {};
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: 'same-origin' });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
};
window.signIn = async (username, password) => {
  const res = await window.api('POST', '/api/v1/auth/login', { username, password });
  window.csrf = res.body.csrfToken;
  return res;
};
window.createPasskey = async (options) => {
  const credential = await navigator.credentials.create({ publicKey: PublicKeyCredential.parseCreationOptionsFromJSON(options) });
  return credential.toJSON();
};
window.getAssertion = async (options) => {
  const credential = await navigator.credentials.get({ publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(options) });
  return credential.toJSON();
};
`;

/** What PAGE_HELPERS put on the page's global object (the project's TypeScript has no DOM types). */
interface PageHelpers {
  api(method: string, path: string, body?: unknown): Promise<ApiAnswer>;
  signIn(username: string, password: string): Promise<ApiAnswer>;
  createPasskey(options: unknown): Promise<unknown>;
  getAssertion(options: unknown): Promise<unknown>;
}

if (!haveChromium && !offline()) {
  describe('passkeys in a real browser', () => {
    it('needs Chromium', () => {
      throw new Error(
        `Chromium is not at ${CHROMIUM}: install it (\`apt-get install -y chromium\`), point LAPSE_TEST_CHROMIUM at one, or run \`npm run test:offline\`.`,
      );
    });
  });
}

describe.skipIf(!haveChromium)('passkeys in a real browser', () => {
  let browser: Browser;
  beforeAll(async () => {
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
  });
  afterAll(async () => {
    await browser?.close();
  });

  describeEachStore('WebAuthn registration and step-up', ({ store }) => {
    let t: TestEngine;
    let app: ApiServer;
    let origin = '';
    const contexts: BrowserContext[] = [];
    const yaml = configWithAuth('loginLimits: { perAccountPerHour: 1000, perIpPerMinute: 1000 }');
    beforeAll(async () => {
      t = await startEngine(store(), { yaml });
      app = await buildApiServer({ engine: t.engine, auth: authFor(t.engine), version: 'test' });
      // `localhost` listens on both loopback addresses, whichever Chromium tries first.
      await app.listen({ host: 'localhost', port: 0 });
      origin = `http://localhost:${(app.server.address() as AddressInfo).port}`;
      await createLocalUser(store(), 'alice', ['sre']);
      await createLocalUser(store(), 'bob', ['sre-leads']);
    });
    afterAll(async () => {
      for (const context of contexts) await context.close();
      await app?.close();
      await t?.stop();
    });

    /** A browser profile with its own virtual authenticator, signed in as `name`. */
    const signedIn = async (name: string): Promise<Page> => {
      const context = await browser.newContext();
      contexts.push(context);
      const page = await context.newPage();
      await page.route(`${origin}/passkey-test`, (route) => route.fulfill({ contentType: 'text/html', body: '<!doctype html><title>passkeys</title>' }));
      await page.addInitScript(PAGE_HELPERS);
      await page.goto(`${origin}/passkey-test`);
      const cdp = await context.newCDPSession(page);
      await cdp.send('WebAuthn.enable');
      await cdp.send('WebAuthn.addVirtualAuthenticator', {
        options: {
          protocol: 'ctap2',
          transport: 'internal',
          hasResidentKey: true,
          hasUserVerification: true,
          isUserVerified: true,
          automaticPresenceSimulation: true,
        },
      });
      const login = await page.evaluate(([u, p]) => (globalThis as unknown as PageHelpers).signIn(u!, p!), [name, PASSWORD]);
      expect(login.status).toBe(200);
      return page;
    };
    const api = (page: Page, method: string, path: string, body?: unknown) =>
      page.evaluate(([m, p, b]) => (globalThis as unknown as PageHelpers).api(m as string, p as string, b), [method, path, body] as const);
    const register = async (page: Page, name: string) => {
      const options = await api(page, 'POST', '/api/v1/mfa/passkeys/registration-options');
      expect(options.status).toBe(200);
      const response = await page.evaluate((o) => (globalThis as unknown as PageHelpers).createPasskey(o), options.body);
      return { response, result: await api(page, 'POST', '/api/v1/mfa/passkeys', { name, response }) };
    };
    const assertion = async (page: Page, signer: Page = page, tweak: (options: Record<string, unknown>) => Record<string, unknown> = (o) => o) => {
      const options = await api(page, 'POST', '/api/v1/mfa/passkeys/authentication-options');
      expect(options.status).toBe(200);
      return signer.evaluate((o) => (globalThis as unknown as PageHelpers).getAssertion(o), tweak(options.body!));
    };
    const stepUp = (page: Page, webauthn: unknown) => api(page, 'POST', '/api/v1/mfa/step-up', { webauthn });
    const lastAudit = async (action: string) => {
      const row = await store()
        .db.selectFrom('audit_events')
        .select('payload')
        .where('payload', 'like', `%"action":"${action}"%`)
        .orderBy('seq', 'desc')
        .limit(1)
        .executeTakeFirst();
      return row ? (JSON.parse(row.payload) as { actor: string; data: Record<string, unknown> }) : undefined;
    };

    let alice: Page;
    let bob: Page;

    it('registers a passkey Chromium created, steps up the session with it, and refuses the same registration twice', async () => {
      alice = await signedIn('alice');
      const { response, result } = await register(alice, 'laptop');
      expect(result.status).toBe(201);
      expect(result.body).toMatchObject({ name: 'laptop', transports: ['internal'], lastUsedAt: null });
      const stored = await store().db.selectFrom('webauthn_credentials').selectAll().executeTakeFirstOrThrow();
      expect(stored.credential_id).toBe((response as { id: string }).id);
      expect((await lastAudit('auth.mfa_passkey_registered'))?.actor).toBe('alice');

      const again = await api(alice, 'POST', '/api/v1/mfa/passkeys', { name: 'again', response });
      expect(again.status).toBe(401);
      expect(again.body).toMatchObject({ code: 'mfa_failed', where: 'webauthn' });
      expect((await lastAudit('auth.mfa_failed'))?.data).toMatchObject({ reason: 'challenge_unknown', purpose: 'registration', severity: 'high' });

      expect((await api(alice, 'GET', '/api/v1/auth/session')).body).toMatchObject({ mfaAt: null });
      const stepped = await stepUp(alice, await assertion(alice));
      expect(stepped.status).toBe(200);
      expect(stepped.body).toMatchObject({ factor: 'webauthn' });
      expect((await api(alice, 'GET', '/api/v1/auth/session')).body).toMatchObject({ mfaAt: stepped.body!.mfaAt });
      expect((await api(alice, 'GET', '/api/v1/mfa')).body).toMatchObject({ factors: ['webauthn'], passkeys: [{ name: 'laptop' }] });
      expect((await lastAudit('auth.mfa_verified'))?.data).toMatchObject({ factor: 'webauthn' });
    });

    it('refuses a replayed assertion (its challenge is spent), audited', async () => {
      const signed = await assertion(alice);
      expect((await stepUp(alice, signed)).status).toBe(200);
      const before = await countAudit(store(), 'auth.mfa_failed');
      const replay = await stepUp(alice, signed);
      expect(replay.status).toBe(401);
      expect(replay.body).toMatchObject({ code: 'mfa_failed', detail: expect.stringMatching(/challenge is unknown or was already used/) });
      expect(await countAudit(store(), 'auth.mfa_failed')).toBe(before + 1);
    });

    it('refuses an expired challenge', async () => {
      const options = await api(alice, 'POST', '/api/v1/mfa/passkeys/authentication-options');
      await sql`UPDATE mfa_challenges SET expires_at = now() - interval '1 second' WHERE challenge = ${options.body!.challenge as string}`.execute(store().db);
      const signed = await alice.evaluate((o) => (globalThis as unknown as PageHelpers).getAssertion(o), options.body);
      const res = await stepUp(alice, signed);
      expect(res.status).toBe(401);
      expect(res.body).toMatchObject({ code: 'mfa_failed', detail: expect.stringMatching(/expired/) });
      expect((await lastAudit('auth.mfa_failed'))?.data).toMatchObject({ reason: 'challenge_expired' });
    });

    it('refuses an assertion whose signature counter went backwards, audited as a possible clone', async () => {
      const { counter } = await store().db.selectFrom('webauthn_credentials').select('counter').executeTakeFirstOrThrow();
      await sql`UPDATE webauthn_credentials SET counter = 1000000`.execute(store().db);
      const res = await stepUp(alice, await assertion(alice));
      expect(res.status).toBe(401);
      expect(res.body).toMatchObject({ code: 'mfa_failed', detail: expect.stringMatching(/counter went backwards/) });
      expect((await lastAudit('auth.mfa_counter_regression'))?.data).toMatchObject({ factor: 'webauthn', reason: 'counter_regression', severity: 'high' });
      await sql`UPDATE webauthn_credentials SET counter = ${counter}`.execute(store().db);
      expect((await stepUp(alice, await assertion(alice))).status).toBe(200);
      const after = await store().db.selectFrom('webauthn_credentials').select(['counter', 'last_used_at']).executeTakeFirstOrThrow();
      expect(Number(after.counter)).toBeGreaterThan(Number(counter));
      expect(after.last_used_at).not.toBeNull();
    });

    it('checks the origin and relying party against auth.publicUrl when it is set', async () => {
      // Signed by the browser for http://localhost:<port>; the server now says it lives elsewhere.
      const signed = await assertion(alice);
      await t.engine.reloadConfig(parseConfig(`${yaml}  publicUrl: http://lapse.example.com\n`, 'test.yaml', {}));
      try {
        const res = await stepUp(alice, signed);
        expect(res.status).toBe(401);
        expect(res.body).toMatchObject({ code: 'mfa_failed', detail: expect.stringMatching(/did not verify/) });
        expect((await lastAudit('auth.mfa_failed'))?.data).toMatchObject({ reason: 'bad_assertion', severity: 'high' });
      } finally {
        await t.engine.reloadConfig(parseConfig(yaml, 'test.yaml', {}));
      }
      expect((await stepUp(alice, await assertion(alice))).status).toBe(200);
    });

    it("refuses one user's passkey for another, and another's passkey removal", async () => {
      bob = await signedIn('bob');
      expect((await register(bob, 'bob key')).result.status).toBe(201);
      expect((await stepUp(bob, await assertion(bob))).status).toBe(200);

      // Bob's challenge, signed by Alice's authenticator with her own (discoverable) passkey.
      const crossed = await assertion(bob, alice, (o) => ({ ...o, allowCredentials: [] }));
      const res = await stepUp(bob, crossed);
      expect(res.status).toBe(401);
      expect(res.body).toMatchObject({ code: 'mfa_failed', detail: expect.stringMatching(/not registered to you/) });
      expect(await lastAudit('auth.mfa_failed')).toMatchObject({ actor: 'bob', data: { reason: 'unknown_passkey', severity: 'high' } });

      const alicesKey = ((await api(alice, 'GET', '/api/v1/mfa')).body!.passkeys as { id: string }[])[0]!.id;
      expect((await api(bob, 'DELETE', `/api/v1/mfa/passkeys/${alicesKey}`)).status).toBe(404);
      expect((await api(alice, 'GET', '/api/v1/mfa')).body).toMatchObject({ passkeys: [{ id: alicesKey }] });
      expect((await api(alice, 'DELETE', `/api/v1/mfa/passkeys/${alicesKey}`)).status).toBe(204);
      expect((await api(alice, 'GET', '/api/v1/mfa')).body).toMatchObject({ factors: [], passkeys: [] });
      expect((await lastAudit('auth.mfa_passkey_removed'))?.actor).toBe('alice');
    });
  });
});
