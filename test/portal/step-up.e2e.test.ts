import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { totpCodeAt } from '../../src/auth/mfa/index.js';
import type { Store } from '../../src/store/index.js';
import { TEST_CONFIG } from '../support/engine.js';
import { offline } from '../support/environment.js';
import { portalPrerequisiteMissing, screenshot, startPortal, type PortalServer } from '../support/portal.js';
import { createLocalUser, PASSWORD } from '../support/sign-in.js';
import { openPgliteStore } from '../support/stores.js';

/**
 * Step-up in the portal: a policy that wants a second factor verified in the last 5 minutes makes
 * the request answer `mfa_step_up_required`; the portal asks for the authenticator code, verifies
 * it for the session and submits the request again.
 */
const missing = portalPrerequisiteMissing();
const REQUIRE = 'require: { justification: { minLength: 10 }, ticket: { pattern: "^OPS-[0-9]+$" } }';
const CONFIG = TEST_CONFIG.replace(REQUIRE, 'require: { justification: { minLength: 10 }, ticket: { pattern: "^OPS-[0-9]+$" }, mfa: { maxAge: 5m } }');

if (missing && !offline()) {
  describe('portal step-up', () => {
    it('needs Chromium and the built portal', () => {
      throw new Error(missing);
    });
  });
}

describe.skipIf(missing !== null)('portal step-up', { timeout: 90_000 }, () => {
  let store: Store;
  let portal: PortalServer;
  beforeAll(async () => {
    expect(CONFIG).not.toBe(TEST_CONFIG);
    store = await openPgliteStore();
    portal = await startPortal(store, { config: CONFIG });
  });
  afterAll(async () => {
    await portal?.stop();
    await store?.close();
  });

  it('asks for the authenticator code when the policy wants a fresh factor, refuses a wrong one, then submits', async () => {
    const alice = await portal.signIn('alice');
    // Enroll an authenticator app through the API with the browser's own session.
    const session = (await (await alice.request.get(`${portal.base}/api/v1/auth/session`)).json()) as { csrfToken: string };
    const headers = { 'x-csrf-token': session.csrfToken };
    const enrolled = await alice.request.post(`${portal.base}/api/v1/mfa/totp`, { headers });
    expect(enrolled.status()).toBe(201);
    const { secret } = (await enrolled.json()) as { secret: string };
    const confirmed = await alice.request.post(`${portal.base}/api/v1/mfa/totp/confirm`, {
      headers,
      data: { code: totpCodeAt(secret, new Date(Date.now() - 30_000)) },
    });
    expect(confirmed.status()).toBe(200);
    // As if the last verification was long ago.
    await sql`UPDATE sessions SET mfa_at = NULL`.execute(store.db);

    await alice.getByRole('button', { name: 'Request prod-db/admin' }).click();
    const form = alice.getByRole('dialog', { name: 'Request prod-db/admin' });
    await form.getByLabel('Reason').fill('apply the hotfix migration by hand');
    await form.getByLabel('Ticket').fill('OPS-7');
    await form.getByRole('button', { name: 'Submit request' }).click();

    const prompt = alice.getByRole('dialog', { name: 'Confirm it is you' });
    await prompt.waitFor();
    const firstDigit = prompt.locator('input:not([type="hidden"])').first();
    await firstDigit.focus();
    await alice.keyboard.type('000000');
    await prompt.getByRole('button', { name: 'Verify' }).click();
    await prompt.getByRole('alert').waitFor();
    await screenshot(alice, 'step-up');
    await firstDigit.focus();
    await alice.keyboard.type(totpCodeAt(secret, new Date()));
    await prompt.getByRole('button', { name: 'Verify' }).click();
    await alice.waitForURL(/\/requests\/req_[0-9a-z]+$/);
    await alice.getByText('pending', { exact: true }).waitFor();
    const { rows } = await sql<{ n: string }>`SELECT count(*) AS n FROM requests`.execute(store.db);
    expect(Number(rows[0]!.n)).toBe(1);
  });
});

describe.skipIf(missing !== null)('portal step-up with a passkey', { timeout: 90_000 }, () => {
  let store: Store;
  let portal: PortalServer;
  beforeAll(async () => {
    store = await openPgliteStore();
    portal = await startPortal(store, { config: CONFIG, host: 'localhost' });
    await createLocalUser(store, 'alice', ['sre', 'oncall']);
  });
  afterAll(async () => {
    await portal?.stop();
    await store?.close();
  });

  it('offers "Use a passkey" and steps up with a passkey Chromium holds (CDP virtual authenticator)', async () => {
    const context = await portal.browser.newContext();
    const page = await context.newPage();
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
    await page.goto(`${portal.base}/`);
    await page.getByLabel('User name').fill('alice');
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.getByRole('button', { name: 'Request prod-db/admin' }).waitFor();

    // Register a passkey through the API from the page, as an enrollment screen would.
    const session = (await (await page.request.get(`${portal.base}/api/v1/auth/session`)).json()) as { csrfToken: string };
    const headers = { 'x-csrf-token': session.csrfToken };
    const options = await (await page.request.post(`${portal.base}/api/v1/mfa/passkeys/registration-options`, { headers })).json();
    // NB. The project's TypeScript has no DOM types: the page function is a string.
    const response = await page.evaluate(
      `(async (o) => (await navigator.credentials.create({ publicKey: PublicKeyCredential.parseCreationOptionsFromJSON(o) })).toJSON())(${JSON.stringify(options)})`,
    );
    expect((await page.request.post(`${portal.base}/api/v1/mfa/passkeys`, { headers, data: { name: 'laptop', response } })).status()).toBe(201);
    await sql`UPDATE sessions SET mfa_at = NULL`.execute(store.db);

    await page.getByRole('button', { name: 'Request prod-db/admin' }).click();
    const form = page.getByRole('dialog', { name: 'Request prod-db/admin' });
    await form.getByLabel('Reason').fill('apply the hotfix migration by hand');
    await form.getByLabel('Ticket').fill('OPS-8');
    await form.getByRole('button', { name: 'Submit request' }).click();
    const prompt = page.getByRole('dialog', { name: 'Confirm it is you' });
    await prompt.getByRole('button', { name: 'Use a passkey' }).click();
    await page.waitForURL(/\/requests\/req_[0-9a-z]+$/);
    await page.getByText('pending', { exact: true }).waitFor();
    await prompt.waitFor({ state: 'hidden' });
    await context.close();
  });
});
