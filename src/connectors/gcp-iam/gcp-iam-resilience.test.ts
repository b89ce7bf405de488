import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { GrantSpec, RevokeResult } from '../types.js';
import { grantIdOf } from './iam-policy.js';
import { LAPSE_MEMBER, openFakeProject, PROJECT, type FakeProject } from './testing/fake-project.js';

/**
 * The gcp-iam connector when Google is busy or inconsistent, against failures injected into the
 * fake: other writers moving the etag (409 ABORTED, 412 FAILED_PRECONDITION), throttling (429
 * RESOURCE_EXHAUSTED), outages (503 UNAVAILABLE) and stale policy reads. Revocation must still
 * converge: every binding gone, none lost, nothing re-created.
 */
const signal = (ms = 30_000) => AbortSignal.timeout(ms);

describe('gcp-iam connector under etag races, throttling and stale reads', () => {
  let p: FakeProject;
  beforeAll(async () => {
    p = await openFakeProject();
  });
  afterAll(async () => p?.close());
  afterEach(() => {
    Object.assign(p.fake.injected, {
      staleReadsAfterWrite: 0,
      concurrentWrites: 0,
      concurrentWriteEvery: 0,
      conflictStatus: 409,
      failNext: [],
      failEvery: null,
      stallMs: 0,
    });
  });

  const lapseIds = () => (p.fake.policy(PROJECT).bindings ?? []).map(grantIdOf).filter((id): id is string => id !== null);
  const writes = () => p.fake.calls.filter((c) => c.method === 'setIamPolicy' && c.caller === LAPSE_MEMBER && c.status === 200).length;

  it('re-reads and re-applies when another writer moved the etag (409 ABORTED)', async () => {
    const conflicts = p.fake.sent.conflicts;
    p.fake.injected.concurrentWrites = 3;
    const g = p.grant();
    await p.connector.provision(g, signal());
    expect(p.fake.sent.conflicts - conflicts).toBe(3);
    expect(lapseIds()).toContain(g.grantId);
    expect(await p.hasAccess(g)).toBe(true);
    await p.connector.revoke(g, null, signal());
  });

  it('treats 412 FAILED_PRECONDITION on the etag the same way', async () => {
    const g = p.grant();
    await p.connector.provision(g, signal());
    Object.assign(p.fake.injected, { conflictStatus: 412, concurrentWrites: 2 });
    await p.connector.revoke(g, null, signal());
    expect(lapseIds()).not.toContain(g.grantId);
    expect(await p.hasAccess(g)).toBe(false);
  });

  it('gives up on a policy that changes under it every time, saying so, and leaves the policy whole', async () => {
    p.fake.injected.concurrentWrites = 1_000;
    const g = p.grant();
    await expect(p.connector.provision(g, signal())).rejects.toThrow(/changed under Lapse 10 times in a row \(etag conflicts\)/);
    p.fake.injected.concurrentWrites = 0;
    expect(lapseIds()).not.toContain(g.grantId);
    expect(p.fake.policy(PROJECT).bindings).toContainEqual({ role: 'roles/resourcemanager.projectIamAdmin', members: [LAPSE_MEMBER] });
  }, 60_000);

  it('absorbs throttling and outages with backoff', async () => {
    const sent = { ...p.fake.sent };
    p.fake.injected.failNext = [429, 503, 429, 503, 429];
    const g = p.grant();
    await p.connector.provision(g, signal());
    await p.connector.revoke(g, null, signal());
    expect(p.fake.sent.throttled - sent.throttled).toBe(3);
    expect(p.fake.sent.unavailable - sent.unavailable).toBe(2);
    expect(lapseIds()).not.toContain(g.grantId);
  });

  it('honours its deadline while Google keeps throttling', async () => {
    p.fake.injected.failEvery = { status: 429, nth: 1 };
    const started = Date.now();
    await expect(p.connector.revoke(p.grant(), null, signal(1_500))).rejects.toMatchObject({ code: 'connector_timeout' });
    expect(Date.now() - started).toBeLessThan(3_000);
  });

  it('a deadline that passes while Google is slow to answer fails the call, not the process', async () => {
    for (const [stallMs, deadlineMs] of [
      [600, 300],
      [300, 450],
    ]) {
      p.fake.injected.stallMs = stallMs!;
      await expect(p.connector.revoke(p.grant(), null, signal(deadlineMs))).rejects.toMatchObject({ code: 'connector_timeout' });
    }
    // Long enough for the stalled answers to arrive at the aborted requests.
    await new Promise((resolve) => setTimeout(resolve, 1_500));
  });

  it('reports propagation pending while the read-back still shows the removed binding, then confirms', async () => {
    p.fake.injected.staleReadsAfterWrite = 1;
    const g = p.grant();
    const { handle } = await p.connector.provision(g, signal());
    const first = await p.connector.revoke(g, handle, signal());
    expect(first).toEqual({ propagationPending: expect.stringMatching(/still shows the binding .*eventually consistent/), recheckInMs: 10_000 });
    // The write happened: the policy itself no longer has the binding.
    expect(lapseIds()).not.toContain(g.grantId);
    expect(await p.connector.revoke(g, handle, signal())).toBeUndefined();
    expect(lapseIds()).not.toContain(g.grantId);
  });

  it('a revoke whose first read predates the provision still removes the binding (its write proves the read stale)', async () => {
    p.fake.injected.staleReadsAfterWrite = 1;
    const g = p.grant();
    await p.connector.provision(g, signal());
    const { staleReads, conflicts } = p.fake.sent;
    await revokeUntilConfirmed(g);
    expect(p.fake.sent.staleReads).toBeGreaterThan(staleReads);
    expect(p.fake.sent.conflicts).toBeGreaterThan(conflicts);
    expect(lapseIds()).not.toContain(g.grantId);
    expect(await p.hasAccess(g)).toBe(false);
  });

  it('batches concurrent changes to one policy into few writes', async () => {
    const grants = Array.from({ length: 60 }, () => p.grant());
    const before = writes();
    await Promise.all(grants.map((g) => p.connector.provision(g, signal())));
    expect(writes() - before).toBeLessThan(15);
    expect(lapseIds()).toEqual(expect.arrayContaining(grants.map((g) => g.grantId)));
    await Promise.all(grants.map((g) => p.connector.revoke(g, null, signal())));
    expect(lapseIds().filter((id) => grants.some((g) => g.grantId === id))).toEqual([]);
  });

  it('one change Google refuses does not sink the others batched with it', async () => {
    p.fake.addCustomRole('projects/acme-prod/roles/lapseReader', ['compute.instances.list']);
    const t = p.target('gcp', {}, { viewer: { role: 'roles/compute.viewer' }, bogus: { role: 'projects/acme-prod/roles/doesNotExist' } });
    const good = p.grant({ target: t });
    const bad = p.grant({ target: t, entitlement: t.entitlements.get('bogus')! });
    const [ok, refused] = await Promise.allSettled([p.connector.provision(good, signal()), p.connector.provision(bad, signal())]);
    expect(ok.status).toBe('fulfilled');
    expect(refused).toMatchObject({
      status: 'rejected',
      reason: {
        message: expect.stringMatching(
          /setIamPolicy on projects\/acme-prod answered HTTP 400 INVALID_ARGUMENT: Role projects\/acme-prod\/roles\/doesNotExist is not supported/,
        ),
      },
    });
    expect(lapseIds()).toContain(good.grantId);
    await p.connector.revoke(good, null, signal());
  });

  it('revokes a 300-grant burst to the last binding under every failure at once', async () => {
    const grants = Array.from({ length: 300 }, () => p.grant());
    await Promise.all(grants.map((g) => p.connector.provision(g, signal())));
    const sent = { ...p.fake.sent };
    Object.assign(p.fake.injected, { failEvery: { status: 429, nth: 4 }, concurrentWriteEvery: 3, staleReadsAfterWrite: 1 });
    await Promise.all(grants.map((g) => revokeUntilConfirmed(g)));
    expect(lapseIds().filter((id) => grants.some((g) => g.grantId === id))).toEqual([]);
    expect(p.fake.sent.throttled).toBeGreaterThan(sent.throttled);
    expect(p.fake.sent.conflicts).toBeGreaterThan(sent.conflicts);
  }, 120_000);

  /** What the engine does with "propagation pending": call revoke again until it confirms (bounded here). */
  async function revokeUntilConfirmed(grant: GrantSpec): Promise<void> {
    for (let i = 0; i < 10; i++) {
      const result: RevokeResult | void = await p.connector.revoke(grant, null, signal());
      if (!result?.propagationPending) return;
    }
    throw new Error(`revoke of ${grant.grantId} never confirmed`);
  }
});
