import { afterEach, beforeEach, expect, it } from 'vitest';
import { describeEachStore } from '../../test/support/stores.js';
import { alice, startEngine, type TestEngine } from '../../test/support/engine.js';
import type { Store } from '../store/index.js';

/**
 * Issue 9, item 1: hundreds of overlapping grants of ONE access key (one person, one entitlement)
 * used to deadlock the provision jobs against each other (each locked its own grant, then all the
 * key's other grants) and stall the scheduler for everybody. Here one requester floods the engine
 * and another person asks for other access while the flood is being worked through.
 */
const dave = { id: 'dave', kind: 'user' as const, groups: ['sre'] };
const FLOOD = 300;
const BYSTANDERS = 10;

type Row = { id: string; status: string; activated_at: Date | null };

/** Waits until every grant of `principal` has `status`, watching the scheduler's rounds meanwhile. */
async function settle(store: Store, t: TestEngine, principal: string, status: string, timeoutMs: number): Promise<{ rows: Row[]; stalledMs: number }> {
  let stalledMs = 0;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const rows = await store.db.selectFrom('grants').select(['id', 'status', 'activated_at']).where('principal_id', '=', principal).execute();
    stalledMs = Math.max(stalledMs, Date.now() - t.engine.scheduler.lastRoundAt);
    if (rows.every((g) => g.status === status)) return { rows, stalledMs };
    if (Date.now() > deadline) {
      const counts: Record<string, number> = {};
      for (const g of rows) counts[g.status] = (counts[g.status] ?? 0) + 1;
      throw new Error(`grants not all ${status} after ${timeoutMs} ms: ${JSON.stringify(counts)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describeEachStore('overlapping grants of one access key', ({ store }) => {
  let t: TestEngine;
  beforeEach(async () => {
    t = await startEngine(store());
  });
  afterEach(async () => {
    await t.stop();
  });

  it(`provisions and revokes ${FLOOD} overlapping grants without stalling, and bystanders keep their normal lag`, async () => {
    // A target call of 20 ms keeps the flood's backlog of provision jobs around for a while
    // however fast the machine is, so the bystanders below really arrive behind it.
    t.noop.behaviour('prod-db').delayMs = 20;
    const started = Date.now();
    const flood = await Promise.all(
      Array.from({ length: FLOOD }, (_, i) => t.engine.submit({ principal: alice, target: 'prod-db', entitlement: 'readonly', reason: `flood ${i}` })),
    );
    // A stall detector, not a speed target (bench/ has those): a deadlock never finishes; 300 submits on a loaded 2-core machine took 21 s.
    expect(Date.now() - started).toBeLessThan(60_000);

    // Another person, other access, one request after the other while the flood is provisioned.
    const lags: number[] = [];
    for (let i = 0; i < BYSTANDERS; i++) {
      const { request } = await t.engine.submit({ principal: dave, target: 'flaky', entitlement: 'readonly', reason: `bystander ${i}` });
      const submittedAt = Date.now();
      for (;;) {
        const grant = await store().db.selectFrom('grants').select('activated_at').where('id', '=', request.grantId!).executeTakeFirstOrThrow();
        if (grant.activated_at !== null) {
          lags.push(Date.now() - submittedAt);
          break;
        }
        if (Date.now() - submittedAt > 20_000) throw new Error(`bystander grant ${request.grantId} not active after 20 s (lags so far: ${lags.join(', ')} ms)`);
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    }
    // NB. The bound. Idle, a noop grant is active ~0.1-0.3 s after its request (bench
    // request_to_active: p99 <= 100 ms, plus the 200 ms poll interval here). A fair round gives a
    // bystander's job a place in the next round however many jobs one key has queued, and a round
    // holds at most 4 jobs of that key (scheduler PER_ACCESS_KEY), so the lag stays one or two
    // short rounds. 3 s leaves room for a loaded 2-core test machine; first-come order made the
    // bystanders wait behind the whole remaining flood (5+ s on PGlite; on PostgreSQL the flood
    // deadlocked and they never became active).
    expect(Math.max(...lags)).toBeLessThan(3_000);

    // Every grant activates; the scheduler keeps completing rounds (what /readyz checks: 10 s).
    const active = await settle(store(), t, 'alice', 'active', 30_000);
    expect(active.rows).toHaveLength(FLOOD);
    expect(active.stalledMs).toBeLessThan(10_000);
    expect(t.noop.hasAccess('prod-db', 'readonly', 'alice')).toBe(true);

    // All released at once: the revokes of one key decide one after the other, and only the last
    // one removes the access at the target.
    t.noop.behaviour('prod-db').delayMs = 0;
    await Promise.all(flood.map(({ request }) => t.engine.release({ grantId: request.grantId!, by: alice, reason: 'done' })));
    const ended = await settle(store(), t, 'alice', 'revoked', 30_000);
    expect(ended.stalledMs).toBeLessThan(10_000);
    expect(t.noop.hasAccess('prod-db', 'readonly', 'alice')).toBe(false);
    expect(t.noop.calls.filter((c) => c.op === 'revoke' && c.principalId === 'alice' && c.effect === 'removed')).toHaveLength(1);
  }, 90_000);
});
