import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { offline } from '../../test/support/environment.js';
import { createServerDatabase, describeEachStore } from '../../test/support/stores.js';
import { alice, startEngine, waitFor, type TestEngine } from '../../test/support/engine.js';
import type { TargetConfig } from '../config/types.js';
import { NoopConnector } from '../connectors/index.js';
import type { CurrentAccess } from '../connectors/index.js';
import { isLapseError } from '../domain/errors.js';
import { getGrant, getRequest, listFindings, listReconcileRuns, openStore } from '../store/index.js';

/** The noop connector, plus a listing that can fail and a hook inside each removal. */
class DriftingTarget extends NoopConnector {
  readonly failList = new Set<string>();
  onRemove: ((access: CurrentAccess) => Promise<void>) | null = null;

  override async listAccess(target: TargetConfig, signal: AbortSignal): Promise<CurrentAccess[]> {
    if (this.failList.has(target.name)) throw new Error(`${target.name} is unreachable`);
    return super.listAccess(target, signal);
  }

  override async removeAccess(target: TargetConfig, access: CurrentAccess, signal: AbortSignal): Promise<void> {
    await this.onRemove?.(access);
    return super.removeAccess(target, access, signal);
  }
}

const CONFIG = `
version: 1
roles:
  admins: { groups: [admins] }
targets:
  guarded:
    connector: noop
    reconcile: { remediate: true }
    entitlements: { readonly: {}, admin: {} }
  watched:
    connector: noop
    entitlements: { readonly: {} }
  quiet:
    connector: noop
    reconcile: { enabled: false }
    entitlements: { readonly: {} }
policies:
  - name: sre
    subjects: { groups: [sre] }
    entitlements: ["guarded/*", "watched/*"]
    duration: { default: 1h, max: 8h }
    autoApprove: true
scheduler: { pollInterval: 100ms, connectorTimeout: 2s, provisionAttempts: 3, revokeBackoff: { min: 20ms, max: 200ms } }
`;

describeEachStore('reconciliation', ({ store }) => {
  let t: TestEngine;
  let connector: DriftingTarget;
  let since = 0;
  beforeEach(async () => {
    since = Number((await store().db.selectFrom('audit_head').select('seq').executeTakeFirstOrThrow()).seq);
    connector = new DriftingTarget();
    t = await startEngine(store(), { yaml: CONFIG, noop: connector });
  });
  afterEach(async () => {
    await t.stop();
    // Each test starts from a clean slate: a fresh connector, so no grant may stay live either.
    await store()
      .db.updateTable('grants')
      .set({ status: 'revoked', ended_at: new Date() })
      .where('status', 'in', ['provisioning', 'active', 'revoking'])
      .execute();
    await store().db.deleteFrom('findings').execute();
    await store().db.deleteFrom('jobs').execute();
  });

  const target = (name: string) => t.engine.config.targets.get(name)!;
  const events = async (action: string) => {
    const rows = await store().db.selectFrom('audit_events').select('payload').where('seq', '>', String(since)).orderBy('seq').execute();
    return rows
      .map((r) => JSON.parse(r.payload) as { action: string; actor: string; subject?: string; data: Record<string, unknown> })
      .filter((e) => e.action === action);
  };
  const grantFor = async (principal: typeof alice, targetName: string, entitlement = 'readonly') => {
    const { request } = await t.engine.submit({ principal, target: targetName, entitlement, durationMs: 3_600_000, reason: 'reconciliation test' });
    const stored = await getRequest(store().db, request.id);
    return waitFor(
      () => getGrant(store().db, stored!.grantId!),
      (g) => g?.status === 'active',
    );
  };

  it('finds standing access created behind its back, audits it, and leaves it alone without remediate', async () => {
    connector.addUnmanaged(target('watched'), 'readonly', 'dba-dave');
    const [report] = await t.engine.reconcile('watched', { actor: 'cli:test' });
    expect(report).toMatchObject({ target: 'watched', error: null, listed: 1, opened: 1, remediated: 0, remediate: false });
    expect(report!.findings).toEqual([
      expect.objectContaining({
        kind: 'standing',
        status: 'open',
        account: 'dba-dave',
        principalId: 'dba-dave',
        entitlement: 'readonly',
        detail: expect.objectContaining({ reason: 'unmanaged' }),
      }),
    ]);
    expect(connector.hasAccess('watched', 'readonly', 'dba-dave')).toBe(true);
    const opened = await events('finding.opened');
    expect(opened).toEqual([
      expect.objectContaining({
        actor: 'cli:test',
        subject: report!.findings[0]!.id,
        data: expect.objectContaining({ kind: 'standing', severity: 'high', target: 'watched' }),
      }),
    ]);

    // Seen again: the same finding, refreshed, not reported twice.
    const [again] = await t.engine.reconcile('watched');
    expect(again!.opened).toBe(0);
    expect(again!.findings.map((f) => f.id)).toEqual([report!.findings[0]!.id]);
    expect(again!.findings[0]!.lastSeenAt.getTime()).toBeGreaterThan(report!.findings[0]!.lastSeenAt.getTime());
    expect(await events('finding.opened')).toHaveLength(1);
  });

  it('removes standing access on a target with remediate: true, and audits the removal', async () => {
    connector.addUnmanaged(target('guarded'), 'admin', 'mallory');
    const [report] = await t.engine.reconcile('guarded');
    expect(report).toMatchObject({ opened: 1, remediated: 1 });
    expect(connector.hasAccess('guarded', 'admin', 'mallory')).toBe(false);
    const [finding] = await listFindings(store().db, { target: 'guarded' });
    expect(finding).toMatchObject({ status: 'remediated', kind: 'standing', account: 'mallory' });
    expect(finding!.remediatedAt).not.toBeNull();
    expect(await events('finding.remediated')).toEqual([
      expect.objectContaining({ subject: finding!.id, data: expect.objectContaining({ severity: 'medium' }) }),
    ]);
    // Gone at the target: the next run finds nothing.
    const [next] = await t.engine.reconcile('guarded');
    expect(next).toMatchObject({ listed: 0, opened: 0, findings: [] });
  });

  it('remediates on request (lapse reconcile --remediate) where the target does not', async () => {
    connector.addUnmanaged(target('watched'), 'readonly', 'eve');
    const [report] = await t.engine.reconcile('watched', { remediate: true });
    expect(report).toMatchObject({ remediate: true, remediated: 1 });
    expect(connector.hasAccess('watched', 'readonly', 'eve')).toBe(false);
  });

  it('never reports or removes access a live grant covers, including access shared by overlapping grants', async () => {
    const overlap = { ...alice, id: 'alice-overlap' };
    const one = await grantFor(overlap, 'guarded');
    const two = await grantFor(overlap, 'guarded');
    // The second provision re-recorded the access under its own grant id; ending it leaves the
    // access (still covered by the first) named after an ended grant.
    await t.engine.release({ grantId: two!.id, by: overlap });
    const released = await waitFor(
      () => getGrant(store().db, two!.id),
      (g) => g?.status === 'revoked',
    );
    expect(released!.coveredBy).toBe(one!.id);
    const listed = await connector.listAccess(target('guarded'), AbortSignal.timeout(1000));
    expect(listed).toEqual([expect.objectContaining({ principalId: overlap.id, grantId: two!.id })]);

    const [report] = await t.engine.reconcile('guarded');
    expect(report).toMatchObject({ listed: 1, covered: 1, opened: 0, remediated: 0, findings: [] });
    expect(connector.hasAccess('guarded', 'readonly', overlap.id)).toBe(true);
    expect(connector.calls.filter((c) => c.op === 'revoke' && c.principalId === overlap.id)).toEqual([]);
  });

  it('reports access left over after its grant ended, and removes it', async () => {
    const grant = await grantFor(alice, 'guarded');
    await t.engine.release({ grantId: grant!.id, by: alice });
    await waitFor(
      () => getGrant(store().db, grant!.id),
      (g) => g?.status === 'revoked',
    );
    // The target kept it (a restore from backup, a revoke that silently did nothing…).
    connector.addUnmanaged(target('guarded'), 'readonly', 'alice');
    const [report] = await t.engine.reconcile('guarded');
    expect(report).toMatchObject({ opened: 1, remediated: 1 });
    expect(connector.hasAccess('guarded', 'readonly', 'alice')).toBe(false);
  });

  it('records missing access for an active grant whose access vanished, and resolves it when it is back', async () => {
    const grant = await grantFor(alice, 'watched');
    const entry = (await connector.listAccess(target('watched'), AbortSignal.timeout(1000)))[0]!;
    await connector.removeAccess(target('watched'), entry, AbortSignal.timeout(1000));

    const [report] = await t.engine.reconcile('watched');
    expect(report).toMatchObject({ opened: 1, remediated: 0 });
    expect(report!.findings).toEqual([expect.objectContaining({ kind: 'missing', grantId: grant!.id, account: 'alice', status: 'open' })]);
    expect(await events('finding.opened')).toEqual([
      expect.objectContaining({ data: expect.objectContaining({ kind: 'missing', severity: 'medium', grant: grant!.id }) }),
    ]);
    expect((await getGrant(store().db, grant!.id))!.status).toBe('active'); // recorded, not re-provisioned

    connector.addUnmanaged(target('watched'), 'readonly', 'alice');
    const [after] = await t.engine.reconcile('watched');
    expect(after).toMatchObject({ resolved: 1, findings: [] });
    const [finding] = await listFindings(store().db, { target: 'watched' });
    expect(finding).toMatchObject({ status: 'resolved', kind: 'missing' });
    expect(await events('finding.resolved')).toEqual([expect.objectContaining({ subject: finding!.id, data: expect.objectContaining({ severity: 'info' }) })]);
  });

  it('resolves standing access that went away on its own', async () => {
    connector.addUnmanaged(target('watched'), 'readonly', 'temp-admin');
    const [first] = await t.engine.reconcile('watched');
    const id = first!.findings[0]!.id;
    await connector.removeAccess(
      target('watched'),
      { account: 'temp-admin', principalId: 'temp-admin', entitlement: 'readonly', grantId: null },
      AbortSignal.timeout(1000),
    );
    const [second] = await t.engine.reconcile('watched');
    expect(second).toMatchObject({ resolved: 1, findings: [] });
    expect(await listFindings(store().db, { status: 'resolved' })).toEqual([expect.objectContaining({ id })]);
  });

  it('never removes access outside the configured entitlements, but reports it', async () => {
    connector.addUnmanaged(target('guarded'), 'superuser', 'intruder');
    const [report] = await t.engine.reconcile('guarded');
    expect(report).toMatchObject({ opened: 1, remediated: 0 });
    expect(report!.findings[0]!.detail).toMatchObject({ keep: 'the entitlement is not configured for this target' });
    expect(connector.hasAccess('guarded', 'superuser', 'intruder')).toBe(true);
  });

  it('does not remove access a grant provisioned after the listing now covers', async () => {
    // Two pieces of standing access; while the first is being removed, alice is granted the
    // second. The re-check before the second removal must see her grant and keep the access.
    connector.addUnmanaged(target('guarded'), 'readonly', 'mallory');
    connector.addUnmanaged(target('guarded'), 'readonly', 'alice');
    let granted: Awaited<ReturnType<typeof grantFor>>;
    connector.onRemove = async (access) => {
      if (access.principalId === 'mallory') granted = await grantFor(alice, 'guarded');
    };
    const [report] = await t.engine.reconcile('guarded');
    expect(report).toMatchObject({ opened: 2, remediated: 1 });
    expect(connector.hasAccess('guarded', 'readonly', 'mallory')).toBe(false);
    expect(connector.hasAccess('guarded', 'readonly', 'alice')).toBe(true);
    const findings = await listFindings(store().db, { target: 'guarded' });
    expect(findings.find((f) => f.account === 'alice')).toMatchObject({
      status: 'resolved',
      detail: expect.objectContaining({ resolvedBy: `covered by ${granted!.id}` }),
    });
    expect((await getGrant(store().db, granted!.id))!.status).toBe('active');
  });

  it('does not report access granted while the listing ran as standing', async () => {
    connector.addUnmanaged(target('guarded'), 'readonly', 'alice');
    const list = connector.listAccess.bind(connector);
    let granted: Awaited<ReturnType<typeof grantFor>>;
    connector.listAccess = async (config, signal) => {
      const listed = await list(config, signal);
      granted = await grantFor(alice, 'guarded');
      return listed;
    };
    const [report] = await t.engine.reconcile('guarded');
    expect(report).toMatchObject({ listed: 1, covered: 1, opened: 0, remediated: 0 });
    expect(connector.hasAccess('guarded', 'readonly', 'alice')).toBe(true);
    expect((await getGrant(store().db, granted!.id))!.status).toBe('active');
  });

  it('skips listed entries it cannot store (NUL, oversized), says so in the run, and reads an empty grant id as none', async () => {
    connector.listAccess = async () => [
      { account: 'nul\u0000byte', principalId: 'x', entitlement: 'readonly', grantId: null },
      { account: 'y'.repeat(2000), principalId: 'y', entitlement: 'readonly', grantId: null },
      { account: 'ok', principalId: 'ok', entitlement: 'readonly', grantId: '' },
    ];
    const [report] = await t.engine.reconcile('watched');
    expect(report).toMatchObject({ error: null, listed: 3, invalid: 2, opened: 1 });
    expect(report!.findings).toEqual([expect.objectContaining({ account: 'ok', detail: expect.objectContaining({ reason: 'unmanaged' }) })]);
    const [run] = await listReconcileRuns(store().db, { target: 'watched' });
    expect(run!.error).toMatch(/^2 listed entries were not usable/);
  });

  it('records a failed listing as the run error, audits it, and keeps the scheduler running', async () => {
    connector.failList.add('watched');
    const [report] = await t.engine.reconcile('watched');
    expect(report).toMatchObject({ error: 'watched is unreachable', listed: 0 });
    const [run] = await listReconcileRuns(store().db, { target: 'watched' });
    expect(run).toMatchObject({ trigger: 'manual', error: 'watched is unreachable' });
    expect(run!.finishedAt).not.toBeNull();
    expect(await events('reconcile.failed')).toEqual([expect.objectContaining({ subject: 'watched', data: expect.objectContaining({ severity: 'high' }) })]);

    // The scheduled run of the failing target neither crashes the scheduler nor stops other work.
    await t.engine.reloadConfig(
      (await import('../config/index.js')).parseConfig(CONFIG.replace('version: 1', 'version: 1\nreconcile: { interval: 200ms }'), 'test.yaml', {}),
    );
    await waitFor(
      () => listReconcileRuns(store().db, { target: 'watched' }),
      (runs) => runs.filter((r) => r.trigger === 'schedule' && r.error !== null).length >= 2,
    );
    await waitFor(
      () => listReconcileRuns(store().db, { target: 'guarded' }),
      (runs) => runs.some((r) => r.trigger === 'schedule' && r.error === null),
    );
    const grant = await grantFor(alice, 'watched');
    expect(grant!.status).toBe('active');
    const jobs = await store()
      .db.selectFrom('jobs')
      .select(['subject_id', 'attempts', 'last_error'])
      .where('kind', '=', 'reconcile')
      .orderBy('subject_id')
      .execute();
    expect(jobs.map((j) => j.subject_id)).toEqual(['guarded', 'watched']); // not `quiet`: reconcile.enabled is false
  });

  it('books one durable job per enabled target, and refuses an unknown target', async () => {
    const jobs = await store().db.selectFrom('jobs').select(['subject_id', 'due_at']).where('kind', '=', 'reconcile').orderBy('subject_id').execute();
    expect(jobs.map((j) => j.subject_id)).toEqual(['guarded', 'watched']);
    // 15 minutes by default, counted from start.
    for (const job of jobs) expect(new Date(job.due_at).getTime() - Date.now()).toBeGreaterThan(14 * 60_000);
    await expect(t.engine.reconcile('nope')).rejects.toSatisfy((e) => isLapseError(e, 'not_found'));
    // A manual run of a target whose schedule is off still works.
    expect((await t.engine.reconcile('quiet'))[0]).toMatchObject({ error: null });
  });
});

describe.skipIf(offline())('reconciliation on replicas sharing one PostgreSQL', () => {
  it('never runs one target on two replicas at once, and opens and removes each drift once', async () => {
    const database = await createServerDatabase();
    const stores = [await openStore({ databaseUrl: database.url }), await openStore({ databaseUrl: database.url })];
    const connector = new DriftingTarget(); // one set of targets seen by both replicas
    const yaml = CONFIG.replace('version: 1', 'version: 1\nreconcile: { interval: 100ms }');
    const engines = [await startEngine(stores[0]!, { yaml, noop: connector }), await startEngine(stores[1]!, { yaml, noop: connector })];
    try {
      const config = engines[0]!.engine.config;
      connector.addUnmanaged(config.targets.get('watched')!, 'readonly', 'dba-dave');
      connector.addUnmanaged(config.targets.get('guarded')!, 'readonly', 'mallory');
      // Slow listings widen the window in which a second replica could start the same target.
      connector.behaviour('watched').delayMs = 150;
      connector.behaviour('guarded').delayMs = 150;
      const db = stores[0]!.db;
      await waitFor(
        () => listReconcileRuns(db, { target: 'watched', limit: 100 }),
        (runs) => runs.filter((r) => r.finishedAt !== null).length >= 8,
        30_000,
      );
      for (const target of ['watched', 'guarded']) {
        const runs = (await listReconcileRuns(db, { target, limit: 1000 }))
          .filter((r) => r.finishedAt !== null)
          .sort((a, b) => a.startedAt.getTime() - b.startedAt.getTime());
        for (let i = 1; i < runs.length; i++) expect(runs[i]!.startedAt.getTime()).toBeGreaterThanOrEqual(runs[i - 1]!.finishedAt!.getTime());
      }
      const opened = await db.selectFrom('findings').select(['target', 'account', 'status']).orderBy('target').execute();
      expect(opened).toEqual([
        { target: 'guarded', account: 'mallory', status: 'remediated' },
        { target: 'watched', account: 'dba-dave', status: 'open' },
      ]);
      expect(connector.calls.filter((c) => c.op === 'revoke' && c.principalId === 'mallory')).toHaveLength(1);
      expect(await db.selectFrom('jobs').select('subject_id').where('kind', '=', 'reconcile').orderBy('subject_id').execute()).toEqual([
        { subject_id: 'guarded' },
        { subject_id: 'watched' },
      ]);
    } finally {
      for (const t of engines) await t.stop();
      for (const store of stores) await store.close();
      await database.drop();
    }
  }, 60_000);
});
