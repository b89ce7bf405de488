import { pino } from 'pino';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { waitFor } from '../../test/support/engine.js';
import { describeEachStore } from '../../test/support/stores.js';
import { parseConfig } from '../config/index.js';
import { connectorRegistry, NoopConnector } from '../connectors/index.js';
import { getVaultAccount } from '../store/index.js';
import { Engine } from './engine.js';
import { vaultSealContext } from './vault-rotation.js';

/**
 * The vault through the engine (docs/vault.md) on both stores, with the noop target's in-memory
 * accounts: onboarding, check-out as a grant, check-in as rotation, exclusivity, failing rotations.
 * Rotation against a real PostgreSQL target, with kill -9 at every step, is in test/vault-crash.test.ts.
 */
const CONFIG = `
version: 1
roles: { admins: { users: [root] } }
targets:
  vault-db:
    connector: noop
    entitlements:
      superuser: { checkout: { account: postgres } }
      owner: { checkout: { account: owner, whenCheckedOut: queue } }
      reporting: { checkout: { account: reporter, exclusive: false } }
      nightly: { checkout: { account: batch, rotateEvery: 1d } }
  other:
    connector: noop
    entitlements:
      root: { checkout: { account: root } }
policies:
  - { name: sre, subjects: { groups: [sre] }, entitlements: ["vault-db/*", "other/*"], autoApprove: true, duration: { default: 1h, max: 8h } }
scheduler: { pollInterval: 50ms, connectorTimeout: 2s, revokeBackoff: { min: 20ms, max: 200ms } }
`;

const alice = { id: 'alice', kind: 'user' as const, groups: ['sre'] };
const dave = { id: 'dave', kind: 'user' as const, groups: ['sre'] };
const root = { id: 'root', kind: 'user' as const, groups: [] as string[] };

describeEachStore('vault', ({ store }) => {
  const noop = new NoopConnector();
  const lines: string[] = [];
  let engine: Engine;
  const seen = new Set<string>();

  beforeAll(async () => {
    engine = new Engine({
      store: store(),
      config: parseConfig(CONFIG, 'vault.yaml', {}),
      connectors: connectorRegistry([noop]),
      logger: pino({ level: 'debug' }, { write: (line: string) => void lines.push(line) }),
    });
    await engine.start();
  });
  afterAll(async () => {
    await engine.stop();
    // No password Lapse held, handed out or was given ever reached a log line or the audit log.
    const audit = (await store().db.selectFrom('audit_events').select('payload').orderBy('seq').execute()).map((r) => r.payload).join('\n');
    const logs = lines.join('\n');
    expect(seen.size).toBeGreaterThan(3);
    for (const password of seen) {
      expect(audit).not.toContain(password);
      expect(logs).not.toContain(password);
    }
  });

  const mfaAt = () => new Date();
  const account = (target: string, name: string) => getVaultAccount(store().db, { target, account: name });
  /** The current password, read through Lapse's sealed store (as only Lapse can). */
  async function currentPassword(target: string, name: string): Promise<string> {
    const row = (await account(target, name))!;
    const password = engine.sealer.open(row.currentSealed, vaultSealContext(row.id, row.generation));
    seen.add(password);
    return password;
  }
  const ready = (target: string, name: string, generation: number, timeoutMs?: number) =>
    waitFor(
      () => account(target, name),
      (a) => a?.status === 'ready' && a.generation >= generation,
      timeoutMs,
    );
  async function onboard(target: string, name: string, password: string): Promise<void> {
    seen.add(password);
    // The target knows the account's password before Lapse does.
    await noop.rotation.verifyPassword(engine.config.targets.get(target)!, name, password, AbortSignal.timeout(1000));
    await engine.onboardVaultAccount({ target, account: name, password, by: root, client: { mfaAt: mfaAt() } });
    await ready(target, name, 2);
  }
  const grantOf = async (requestId: string) => (await engine.read.request(requestId))!.grantId!;
  const grant = (id: string) => engine.read.grant(id);

  it('onboarding: admins only, with a fresh second factor, and only with the password the target accepts; nothing stored otherwise', async () => {
    const target = engine.config.targets.get('vault-db')!;
    await noop.rotation.verifyPassword(target, 'postgres', 'the-dbas-old-password', AbortSignal.timeout(1000));
    seen.add('the-dbas-old-password');
    const attempt = (by: typeof root, password: string, at?: Date) =>
      engine.onboardVaultAccount({ target: 'vault-db', account: 'postgres', password, by, client: at ? { mfaAt: at } : {} });
    await expect(attempt(alice, 'the-dbas-old-password', mfaAt())).rejects.toMatchObject({ code: 'forbidden' });
    await expect(attempt(root, 'the-dbas-old-password')).rejects.toMatchObject({ code: 'mfa_step_up_required' });
    await expect(attempt(root, 'the-dbas-old-password', new Date(Date.now() - 6 * 60_000))).rejects.toMatchObject({ code: 'mfa_step_up_required' });
    const wrong = await attempt(root, 'a-wrong-guess', mfaAt()).catch((error: Error) => error);
    expect(wrong).toMatchObject({ code: 'validation_failed', message: 'target vault-db refused the password given for postgres; nothing was stored' });
    expect(await account('vault-db', 'postgres')).toBeUndefined();
    await expect(
      engine.onboardVaultAccount({ target: 'vault-db', account: 'not-configured', password: 'x', by: root, client: { mfaAt: mfaAt() } }),
    ).rejects.toMatchObject({
      code: 'not_found',
    });
  });

  it('onboarding rotates at once: the password the admin gave stops working, only Lapse knows the new one', async () => {
    await onboard('vault-db', 'owner', 'owner-password-from-the-wiki');
    const row = (await account('vault-db', 'owner'))!;
    expect(row).toMatchObject({ status: 'ready', generation: 2, onboardedBy: 'root', rotationFailures: 0 });
    const current = await currentPassword('vault-db', 'owner');
    expect(current).toMatch(/^[A-Za-z0-9]{32}$/);
    expect(noop.rotation.accepts('vault-db', 'owner', current)).toBe(true);
    expect(noop.rotation.accepts('vault-db', 'owner', 'owner-password-from-the-wiki')).toBe(false);
  });

  it('a check-out is a grant: the password is revealed once; the check-in ends sessions and rotates before the grant counts as revoked', async () => {
    await onboard('other', 'root', 'root-password-on-a-post-it');
    const before = await currentPassword('other', 'root');
    const { request } = await engine.submit({ principal: alice, target: 'other', entitlement: 'root', reason: 'rotate the TLS keys' });
    const grantId = await grantOf(request.id);
    await waitFor(
      () => grant(grantId),
      (g) => g?.status === 'active',
    );
    const credentials = await engine.fetchCredentials({ grantId, by: alice });
    expect(credentials).toEqual({ username: 'root', password: before, target: 'other' });
    await expect(engine.fetchCredentials({ grantId, by: alice })).rejects.toMatchObject({ code: 'gone' });
    expect((await account('other', 'root'))!).toMatchObject({ status: 'checked_out', holderGrantId: grantId });

    await engine.release({ grantId, by: alice, reason: 'done' });
    const ended = await waitFor(
      () => grant(grantId),
      (g) => g?.status === 'revoked',
    );
    expect(ended?.status).toBe('revoked');
    const after = await currentPassword('other', 'root');
    expect(after).not.toBe(before);
    expect(noop.rotation.accepts('other', 'root', before)).toBe(false);
    expect(noop.rotation.accepts('other', 'root', after)).toBe(true);
    const calls = noop.calls.filter((c) => c.account === 'root').map((c) => c.op);
    // Sessions end before the password changes; the revoke's read-back ends them again after.
    expect(calls.indexOf('end_sessions')).toBeLessThan(calls.lastIndexOf('rotate'));
    expect(calls.at(-1)).toBe('end_sessions');
  });

  it('exclusive, refuse: of two concurrent check-outs exactly one wins; the other is refused clearly and stores nothing', async () => {
    await onboard('vault-db', 'postgres', 'the-dbas-old-password');
    const ask = (principal: typeof alice) => engine.submit({ principal, target: 'vault-db', entitlement: 'superuser', reason: 'vacuum the big table' });
    const results = await Promise.allSettled([ask(alice), ask(dave)]);
    const won = results.filter((r) => r.status === 'fulfilled');
    const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(1);
    expect(lost[0]!.reason).toMatchObject({ code: 'conflict', message: expect.stringMatching(/^vault-db\/superuser is checked out by someone else/) });
    const winner = (won[0] as PromiseFulfilledResult<Awaited<ReturnType<typeof ask>>>).value.request;
    const grantId = await grantOf(winner.id);
    await waitFor(
      () => grant(grantId),
      (g) => g?.status === 'active',
    );
    await engine.release({ grantId, by: winner.principal, reason: 'done' });
    await waitFor(
      () => grant(grantId),
      (g) => g?.status === 'revoked',
    );
  });

  it('exclusive, queue: the second check-out waits until the first is checked in and rotated, then gets the new password', async () => {
    const ask = (principal: typeof alice) => engine.submit({ principal, target: 'vault-db', entitlement: 'owner', reason: 'migrate the schema' });
    const [first, second] = await Promise.all([ask(alice), ask(dave)]);
    const ids = [await grantOf(first.request.id), await grantOf(second.request.id)];
    const states = await waitFor(
      async () => Promise.all(ids.map((id) => grant(id))),
      (gs) => gs.filter((g) => g?.status === 'active').length === 1 && gs.some((g) => g?.lastError?.startsWith('queued:')),
    );
    const holder = states.find((g) => g!.status === 'active')!;
    const queued = states.find((g) => g!.status !== 'active')!;
    expect(queued.status).toBe('provisioning');
    const firstPassword = (await engine.fetchCredentials({ grantId: holder.id, by: { ...alice, id: holder.principalId } })).password!;
    seen.add(firstPassword);
    await engine.release({ grantId: holder.id, by: { ...alice, id: holder.principalId }, reason: 'done' });
    await waitFor(
      () => grant(queued.id),
      (g) => g?.status === 'active',
    );
    expect((await grant(holder.id))!.status).toBe('revoked');
    const secondPassword = (await engine.fetchCredentials({ grantId: queued.id, by: { ...alice, id: queued.principalId } })).password!;
    seen.add(secondPassword);
    expect(secondPassword).not.toBe(firstPassword);
    expect(noop.rotation.accepts('vault-db', 'owner', firstPassword)).toBe(false);
    await engine.release({ grantId: queued.id, by: { ...alice, id: queued.principalId }, reason: 'done' });
    await waitFor(
      () => grant(queued.id),
      (g) => g?.status === 'revoked',
    );
  });

  it('a failing rotation keeps the check-in open and the account "rotation overdue", audited and counted, retried until it works', async () => {
    const { request } = await engine.submit({ principal: alice, target: 'other', entitlement: 'root', reason: 'look at the logs' });
    const grantId = await grantOf(request.id);
    await waitFor(
      () => grant(grantId),
      (g) => g?.status === 'active',
    );
    const held = (await engine.fetchCredentials({ grantId, by: alice })).password!;
    seen.add(held);
    noop.behaviour('other').failRotate = true;
    await engine.release({ grantId, by: alice, reason: 'done' });
    const failing = await waitFor(
      () => account('other', 'root'),
      (a) => (a?.rotationFailures ?? 0) >= 2,
    );
    expect(failing).toMatchObject({ status: 'rotating', lastError: 'noop target other was told to fail password changes' });
    expect(failing?.failingSince).not.toBeNull();
    expect(await engine.overdueRotations()).toBe(1);
    expect((await grant(grantId))!).toMatchObject({ status: 'revoking', propagationPending: 'checked in; rotating the password of other/root' });
    expect(noop.rotation.accepts('other', 'root', held)).toBe(true);

    noop.behaviour('other').failRotate = false;
    await waitFor(
      () => grant(grantId),
      (g) => g?.status === 'revoked',
    );
    expect(await engine.overdueRotations()).toBe(0);
    expect(noop.rotation.accepts('other', 'root', held)).toBe(false);
    const actions = (await store().db.selectFrom('audit_events').select('payload').orderBy('seq').execute()).map(
      (r) => JSON.parse(r.payload) as { action: string },
    );
    expect(actions.filter((a) => a.action === 'vault.rotation_failed').length).toBeGreaterThanOrEqual(2);
  });

  it('a shared (non-exclusive) account is rotated when its last holder checks in', async () => {
    await onboard('vault-db', 'reporter', 'reporter-password');
    const ask = (principal: typeof alice) => engine.submit({ principal, target: 'vault-db', entitlement: 'reporting', reason: 'monthly numbers' });
    const ids = [await grantOf((await ask(alice)).request.id), await grantOf((await ask(dave)).request.id)];
    await waitFor(
      async () => Promise.all(ids.map((id) => grant(id))),
      (gs) => gs.every((g) => g?.status === 'active'),
    );
    const shared = await currentPassword('vault-db', 'reporter');
    await engine.release({ grantId: ids[0]!, by: alice, reason: 'done' });
    await waitFor(
      () => grant(ids[0]!),
      (g) => g?.status === 'revoked',
    );
    expect(noop.rotation.accepts('vault-db', 'reporter', shared)).toBe(true);
    await engine.release({ grantId: ids[1]!, by: dave, reason: 'done' });
    await waitFor(
      () => grant(ids[1]!),
      (g) => g?.status === 'revoked',
    );
    expect(noop.rotation.accepts('vault-db', 'reporter', shared)).toBe(false);
    expect(noop.rotation.accepts('vault-db', 'reporter', await currentPassword('vault-db', 'reporter'))).toBe(true);
  });

  it('rotateEvery: an account nobody holds is rotated on schedule; a checked-out one waits for its check-in', { timeout: 120_000 }, async () => {
    // NB. Each step chains several jobs (revoke, rotate, revoke again) on a loaded 2-core machine:
    // the waits are stall detectors, not timings.
    const SLOW = 30_000;
    await onboard('vault-db', 'batch', 'batch-password');
    const before = (await account('vault-db', 'batch'))!;
    const job = () =>
      store().db.selectFrom('jobs').select(['due_at', 'locked_by']).where('kind', '=', 'rotate').where('subject_id', '=', before.id).executeTakeFirst();
    const next = (await job())!;
    // Due a day after the rotation that followed onboarding.
    expect(new Date(next.due_at).getTime() - before.rotatedAt!.getTime()).toBeGreaterThan(86_400_000 - 5_000);
    const old = await currentPassword('vault-db', 'batch');
    await store()
      .db.updateTable('jobs')
      .set({ due_at: new Date(Date.now() - 1000) })
      .where('kind', '=', 'rotate')
      .where('subject_id', '=', before.id)
      .execute();
    engine.scheduler.poke();
    await ready('vault-db', 'batch', before.generation + 1, SLOW);
    expect(noop.rotation.accepts('vault-db', 'batch', old)).toBe(false);
    expect(noop.rotation.accepts('vault-db', 'batch', await currentPassword('vault-db', 'batch'))).toBe(true);
    // NB. In chain order: without ORDER BY, PostgreSQL returns rows in physical order, which is not
    // insertion order when pooled connections append into different pages (the flake of this test).
    const actions = (await store().db.selectFrom('audit_events').select('payload').orderBy('seq').execute())
      .map((r) => JSON.parse(r.payload) as { action: string; subject?: string; data?: { reason?: string; generation?: number } })
      .filter((e) => e.subject === before.id && e.action === 'vault.rotated');
    expect(actions.find((e) => e.data?.generation === before.generation + 1)?.data?.reason).toBe('scheduled');
    expect(await job()).toBeDefined();

    // Checked out when the schedule comes round: no rotation under the holder; the check-in rotates.
    const { request } = await engine.submit({ principal: alice, target: 'vault-db', entitlement: 'nightly', reason: 'rerun the batch' });
    const grantId = await grantOf(request.id);
    await waitFor(
      () => grant(grantId),
      (g) => g?.status === 'active',
      SLOW,
    );
    const held = (await account('vault-db', 'batch'))!;
    await store()
      .db.updateTable('jobs')
      .set({ due_at: new Date(Date.now() - 1000) })
      .where('kind', '=', 'rotate')
      .where('subject_id', '=', before.id)
      .execute();
    engine.scheduler.poke();
    await waitFor(job, (j) => j === undefined, SLOW);
    expect((await account('vault-db', 'batch'))!).toMatchObject({ status: 'checked_out', generation: held.generation });
    await engine.release({ grantId, by: alice, reason: 'done' });
    await waitFor(
      () => grant(grantId),
      (g) => g?.status === 'revoked',
      SLOW,
    );
    expect((await account('vault-db', 'batch'))!.generation).toBe(held.generation + 1);
    expect(await job()).toBeDefined();
  });

  it('a request for an account never onboarded is refused and stores nothing', async () => {
    const fresh = new Engine({
      store: store(),
      config: parseConfig(CONFIG.replace('account: reporter', 'account: nobody-yet'), 'v.yaml', {}),
      connectors: connectorRegistry([noop]),
    });
    await expect(fresh.submit({ principal: alice, target: 'vault-db', entitlement: 'reporting', reason: 'monthly numbers' })).rejects.toMatchObject({
      code: 'invalid_transition',
      details: { hint: 'An admin must onboard it first: `lapse vault onboard vault-db nobody-yet`.' },
    });
  });
});
