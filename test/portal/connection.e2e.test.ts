import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { offline } from '../support/environment.js';
import { portalPrerequisiteMissing, startPortal, type PortalServer } from '../support/portal.js';
import { openPgliteStore } from '../support/stores.js';
import type { Store } from '../../src/store/index.js';

/**
 * The portal's conversation with the server when nobody is signed in, and when the server goes
 * away (issue 9 items 13 and 14), in real Chromium.
 */
const missing = portalPrerequisiteMissing();

if (missing && !offline()) {
  describe('portal connection in a real browser', () => {
    it('needs Chromium and the built portal', () => {
      throw new Error(missing);
    });
  });
}

describe.skipIf(missing !== null)('portal connection in a real browser', { timeout: 90_000 }, () => {
  let store: Store;
  let portal: PortalServer;

  beforeAll(async () => {
    store = await openPgliteStore();
    portal = await startPortal(store);
  });
  afterAll(async () => {
    await portal?.stop().catch(() => undefined);
    await store?.close();
  });

  it('loads signed-out pages without a failed request in the console and without an audit event', async () => {
    const count = async () => Number((await sql<{ n: string }>`SELECT count(*) AS n FROM audit_events`.execute(store.db)).rows[0]!.n);
    const before = await count();
    const context = await portal.browser.newContext();
    try {
      const page = await context.newPage();
      const errors: string[] = [];
      const failed: string[] = [];
      page.on('console', (message) => {
        if (message.type() === 'error') errors.push(message.text());
      });
      page.on('response', (response) => {
        if (response.status() >= 400) failed.push(`${response.status()} ${response.url()}`);
      });
      for (const path of ['/', '/access', '/approvals']) {
        await page.goto(`${portal.base}${path}`);
        await page.getByRole('link', { name: 'Sign in with single sign-on' }).waitFor();
      }
      expect(failed).toEqual([]);
      expect(errors).toEqual([]);
      expect(await count()).toBe(before);
    } finally {
      await context.close();
    }
  });

  it('shows "server lost" when the server shuts down while the page is open', async () => {
    const page = await portal.signIn('alice', '/access');
    const badge = page.getByTestId('live-state');
    await expect.poll(() => badge.textContent(), { timeout: 15_000 }).toBe('live');
    await portal.app.close();
    await expect.poll(() => badge.textContent(), { timeout: 15_000 }).toBe('server lost');
  });
});
