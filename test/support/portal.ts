import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { expect } from 'vitest';
import { buildApiServer, type ApiServer } from '../../src/api/index.js';
import { PORTAL_DIR } from '../../src/api/routes/portal.js';
import type { Store } from '../../src/store/index.js';
import { startEngine, TEST_CONFIG, type TestEngine } from './engine.js';
import { startOidcProvider, type TestOidcProvider } from './oidc-provider.js';
import { authFor } from './auth-service.js';

/**
 * The portal under test: the real server (engine + API + built portal) on 127.0.0.1, signing in
 * through a real OpenID provider, driven by Debian's Chromium through playwright-core.
 */
export const CHROMIUM = process.env.LAPSE_TEST_CHROMIUM ?? '/usr/bin/chromium';
export const SCREENSHOTS = join(process.cwd(), 'test-artifacts', 'screenshots');

/** Why the portal suites cannot run here, or null when they can. */
export function portalPrerequisiteMissing(): string | null {
  if (!existsSync(CHROMIUM))
    return `Chromium is not at ${CHROMIUM}: install it (\`apt-get install -y chromium\`), point LAPSE_TEST_CHROMIUM at one, or run \`npm run test:offline\`.`;
  if (!existsSync(join(PORTAL_DIR, 'index.html')))
    return `the portal is not built (${PORTAL_DIR} has no index.html): run \`npm run build:web\` (npm ci does it).`;
  return null;
}

export const PORTAL_USERS = {
  alice: { groups: ['sre', 'oncall'] },
  bob: { groups: ['sre-leads'] },
  carol: { groups: ['security'] },
  root: { groups: ['admins'] },
  mallory: { groups: ['contractors'] },
};
export type PortalUser = keyof typeof PORTAL_USERS;

export interface PortalServer {
  readonly base: string;
  readonly t: TestEngine;
  readonly app: ApiServer;
  readonly browser: Browser;
  /** A fresh browser profile (own cookies) signed in as `who` through single sign-on, on `path`. */
  signIn(who: PortalUser, path?: string): Promise<Page>;
  /** Console errors and CSP violations the pages reported. */
  readonly pageErrors: string[];
  stop(): Promise<void>;
}

/** `config` is the configuration without its `auth:` section (default TEST_CONFIG); sign-in is added. */
export async function startPortal(store: Store, options: { config?: string; host?: string } = {}): Promise<PortalServer> {
  const idp: TestOidcProvider = await startOidcProvider({ users: PORTAL_USERS });
  const dir = mkdtempSync(join(tmpdir(), 'lapse-portal-'));
  writeFileSync(join(dir, 'client-secret'), idp.clientSecret);
  const auth = `oidc:\n  issuer: ${idp.issuer}\n  clientId: ${idp.clientId}\n  clientSecret: \${file:${join(dir, 'client-secret')}}\n  allowInsecureHttp: true\nloginLimits: { perAccountPerHour: 1000, perIpPerMinute: 1000 }`;
  const t = await startEngine(store, { yaml: `${options.config ?? TEST_CONFIG}\nauth:\n${auth.replace(/^/gm, '  ')}\n` });
  const app = await buildApiServer({ engine: t.engine, auth: authFor(t.engine), version: 'test' });
  // NB. Single sign-on needs 127.0.0.1 (the test provider's loopback redirect); passkeys need a host
  // name (`localhost`, which listens on both loopback addresses), since an IP cannot be a relying party.
  const host = options.host ?? '127.0.0.1';
  await app.listen({ port: 0, host });
  const base = `http://${host}:${(app.server.address() as AddressInfo).port}`;
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-dev-shm-usage'],
  });
  const contexts: BrowserContext[] = [];
  const pageErrors: string[] = [];

  const signIn = async (who: PortalUser, path = '/') => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    contexts.push(context);
    // NB. The test provider signs in whoever `login_hint` names (there is no login form to fill).
    // Redirect hops cannot be intercepted, so the first hop (our /auth/oidc/login) is fetched here
    // and its redirect to the provider gets the hint.
    await context.route(
      (url) => url.pathname === '/auth/oidc/login',
      async (route) => {
        const response = await route.fetch({ maxRedirects: 0 });
        const location = new URL(response.headers().location!);
        location.searchParams.set('login_hint', who);
        await route.fulfill({ response, headers: { ...response.headers(), location: location.href } });
      },
    );
    const page = await context.newPage();
    page.on('console', (message) => {
      if (message.type() === 'error') pageErrors.push(`${who}: ${message.text()}`);
    });
    page.on('pageerror', (error) => pageErrors.push(`${who}: ${error.message}`));
    await page.goto(`${base}${path}`);
    await page.getByRole('link', { name: 'Sign in with single sign-on' }).click();
    await expect.poll(() => page.getByTestId('signed-in-as').textContent(), { timeout: 15_000 }).toBe(who);
    return page;
  };

  return {
    base,
    t,
    app,
    browser,
    signIn,
    pageErrors,
    stop: async () => {
      for (const context of contexts) await context.close().catch(() => undefined);
      await browser.close();
      await app.close();
      await t.stop();
      await idp.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Saves a screenshot of the page under test-artifacts/screenshots (CI keeps the folder; git ignores it). */
export async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true });
}
