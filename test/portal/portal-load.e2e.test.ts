import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { alice } from '../support/engine.js';
import { offline } from '../support/environment.js';
import { portalPrerequisiteMissing, startPortal, type PortalServer } from '../support/portal.js';
import { openPgliteStore } from '../support/stores.js';
import type { Store } from '../../src/store/index.js';

/**
 * "Pages are interactive within 1 s on the embedded database with 10,000 requests in history":
 * 10,000 requests are submitted through the engine (pending, so each approver's inbox holds all
 * of them), then each main page is loaded in Chromium and timed from navigation start to the
 * moment its data is on screen and usable. Figures go to test-artifacts/portal-load.json and
 * bench/README.md, each marked against the 1 s target. The test itself fails only past a 3 s guard:
 * on a shared 2-core machine the same page varies by 2x run to run, and a page that fetched the
 * whole history (not one page of it) would take far longer than that.
 */
const HISTORY = Number(process.env.LAPSE_PORTAL_LOAD_REQUESTS ?? 10_000);
const LOADS = 5;
const TARGET_MS = 1_000;
const GUARD_MS = 3_000;
const missing = portalPrerequisiteMissing();

if (missing && !offline()) {
  describe('portal load time', () => {
    it('needs Chromium and the built portal', () => {
      throw new Error(missing);
    });
  });
}

describe.skipIf(missing !== null)('portal load time', { timeout: 600_000 }, () => {
  let store: Store;
  let portal: PortalServer;
  let firstId = '';

  beforeAll(async () => {
    store = await openPgliteStore();
    portal = await startPortal(store);
    const started = Date.now();
    let next = 0;
    // Four submitters at a time; PGlite runs one transaction at a time anyway.
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        while (next < HISTORY) {
          const n = next++;
          const { request } = await portal.t.engine.submit({
            principal: alice,
            target: 'prod-db',
            entitlement: 'admin',
            durationMs: 3_600_000,
            reason: `seeded request ${n} for the load test`,
            ticket: `OPS-${n}`,
            parameters: {},
            client: { ip: '127.0.0.1' },
          });
          if (n === 0) firstId = request.id;
        }
      }),
    );
    process.stdout.write(`seeded ${HISTORY} requests in ${Date.now() - started} ms\n`);
  }, 900_000);
  afterAll(async () => {
    await portal?.stop();
    await store?.close();
  });

  /** Milliseconds from navigation start until `ready` is visible, measured by the page's own clock. */
  const timeToInteractive = async (page: Page, path: string, ready: (page: Page) => ReturnType<Page['getByRole']>) => {
    await page.goto(`${portal.base}${path}`);
    await ready(page).first().waitFor({ timeout: 10_000 });
    const at = await page.evaluate<number>('performance.now()');
    // The slowest API call of this load (server time plus transfer), to tell server from page.
    const slowest = await page.evaluate<[string, number] | undefined>(
      "performance.getEntriesByType('resource').filter((e) => e.name.includes('/api/')).map((e) => [new URL(e.name).pathname + new URL(e.name).search, Math.round(e.duration)]).sort((a, b) => b[1] - a[1])[0]",
    );
    return { at, slowest };
  };

  it(`every main page is interactive within ${GUARD_MS} ms (target ${TARGET_MS} ms, recorded) with ${HISTORY} requests in history`, async () => {
    const pages: { name: string; who: 'alice' | 'bob' | 'root'; path: string; ready: (page: Page) => ReturnType<Page['getByRole']> }[] = [
      { name: 'catalogue', who: 'alice', path: '/', ready: (p) => p.getByRole('button', { name: 'Request prod-db/admin' }) },
      { name: 'my access', who: 'alice', path: '/access', ready: (p) => p.getByRole('link', { name: 'prod-db/admin' }) },
      { name: 'request detail', who: 'alice', path: `/requests/${firstId}`, ready: (p) => p.getByRole('heading', { name: 'Timeline' }) },
      { name: 'approvals (10,000 pending)', who: 'bob', path: '/approvals', ready: (p) => p.getByRole('button', { name: 'Approve' }) },
      { name: 'admin: active grants', who: 'root', path: '/admin/grants', ready: (p) => p.getByRole('table', { name: 'Active grants' }) },
      { name: 'admin: audit', who: 'root', path: '/admin/audit', ready: (p) => p.getByRole('cell', { name: 'request.pending' }) },
      { name: 'dashboard', who: 'root', path: '/dashboard', ready: (p) => p.getByText('Requests by outcome') },
    ];
    const signedIn = new Map<string, Page>();
    const results = [];
    for (const entry of pages) {
      if (!signedIn.has(entry.who)) signedIn.set(entry.who, await portal.signIn(entry.who));
      const page = signedIn.get(entry.who)!;
      const loads = [];
      for (let i = 0; i < LOADS; i++) loads.push(await timeToInteractive(page, entry.path, entry.ready));
      const sorted = [...loads].sort((a, b) => a.at - b.at);
      const median = sorted[Math.floor(LOADS / 2)]!;
      results.push({
        page: entry.name,
        path: entry.path,
        history: HISTORY,
        loads: LOADS,
        first_ms: Math.round(loads[0]!.at),
        median_ms: Math.round(median.at),
        max_ms: Math.round(sorted.at(-1)!.at),
        median_slowest_api: median.slowest ?? null,
        target_met: median.at < TARGET_MS,
        load_per_core: Number((loadavg()[0]! / cpus().length).toFixed(1)),
      });
    }
    mkdirSync('test-artifacts', { recursive: true });
    writeFileSync('test-artifacts/portal-load.json', `${JSON.stringify(results, null, 2)}\n`);
    for (const r of results) process.stdout.write(`${JSON.stringify({ scenario: 'portal_interactive', ...r })}\n`);
    for (const r of results) expect(r.median_ms, `${r.page} median`).toBeLessThan(GUARD_MS);
  });
});
