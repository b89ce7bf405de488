import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { alice, bob, carol, startEngine, waitFor, type TestEngine } from '../../test/support/engine.js';
import { describeEachStore } from '../../test/support/stores.js';
import { newId } from '../domain/ids.js';
import { insertUser, listDeliveries, listReviewCampaigns, listReviewItems, type Store } from '../store/index.js';

/** prod-db/admin is owned by carol; everything else falls back to the sre-leads (bob). */
const CONFIG = `
version: 1
roles:
  admins: { groups: [admins] }
targets:
  prod-db:
    connector: noop
    entitlements: { readonly: {}, admin: {} }
  other:
    connector: noop
    entitlements: { readonly: {} }
policies:
  - name: sre-readonly
    subjects: { users: [bob], groups: [sre] }
    entitlements: ["prod-db/readonly", "other/readonly"]
    autoApprove: true
  - name: sre-admin
    subjects: { users: [dave], groups: [sre] }
    entitlements: ["prod-db/admin"]
    autoApprove: true
breakGlass: { enabled: true, subjects: { groups: [oncall] }, entitlements: ["prod-db/*"], maxDuration: 1h, minReasonLength: 5 }
reviews:
  - name: quarterly
    scope: { targets: [prod-db] }
    every: 90d
    deadline: 7d
    remind: { every: 1d }
    reviewers:
      owners: { "prod-db/admin": { users: [carol] } }
      fallback: { groups: [sre-leads] }
    whenUnanswered: remove
    highRisk: ["prod-db/admin"]
notifications:
  channels:
    mail: { type: email, from: lapse@example.test, smtp: { host: 127.0.0.1, port: 1, allowInsecure: true, timeout: 1s }, retry: { attempts: 1 } }
  rules:
    - { events: [review.opened, review.reminder], channels: [mail] }
scheduler: { pollInterval: 100ms, connectorTimeout: 2s, provisionAttempts: 3, revokeBackoff: { min: 20ms, max: 200ms } }
`;

async function addPeople(store: Store): Promise<void> {
  for (const person of [alice, bob, carol, { id: 'dave', groups: [] as string[] }]) {
    await insertUser(store.db, {
      id: newId('user'),
      name: person.id,
      kind: 'user',
      groups: JSON.stringify(person.groups),
      password_hash: null,
      created_at: new Date(),
      disabled_at: null,
    });
  }
}

describeEachStore('access reviews', ({ store }) => {
  let t: TestEngine;
  let campaignId: string;
  const events = async (action: string) => {
    const rows = await store().db.selectFrom('audit_events').select('payload').orderBy('seq').execute();
    return rows
      .map((r) => JSON.parse(r.payload) as { action: string; actor: string; subject?: string; data: Record<string, unknown> })
      .filter((e) => e.action === action);
  };
  const item = async (principal: string, entitlement: string, kind = 'eligible') => {
    const items = await listReviewItems(store().db, { campaignId });
    const found = items.find((i) => i.principalId === principal && i.entitlement === entitlement && i.kind === kind);
    if (!found)
      throw new Error(`no ${kind} item for ${principal} ${entitlement}: ${JSON.stringify(items.map((i) => [i.kind, i.principalId, i.target, i.entitlement]))}`);
    return found;
  };

  beforeAll(async () => {
    await addPeople(store());
    // Before the campaign exists (lapse.yaml without it): use in the period, and standing access.
    const before = await startEngine(store(), { yaml: CONFIG.split('reviews:')[0]! });
    await before.engine.submit({ principal: alice, target: 'prod-db', entitlement: 'readonly', durationMs: 3_600_000, reason: 'look at the orders table' });
    await before.engine.breakGlass({ principal: alice, target: 'prod-db', entitlement: 'admin', durationMs: 600_000, reason: 'outage in the orders service' });
    before.noop.addUnmanaged(before.engine.config.targets.get('prod-db')!, 'admin', 'dba-dave');
    await before.engine.reconcile('prod-db', { actor: 'test' });
    await before.stop();
    // The campaign is added: with none opened before, it opens at once (due now by the database clock).
    t = await startEngine(store(), { yaml: CONFIG, noop: before.noop });
    const [campaign] = await waitFor(
      () => listReviewCampaigns(store().db),
      (c) => c.length === 1,
    );
    campaignId = campaign!.id;
  }, 60_000);
  afterAll(async () => {
    await t?.stop();
  });

  it('opens on schedule with eligible, used and standing items and their evidence, and books the next opening', async () => {
    const campaign = (await listReviewCampaigns(store().db))[0]!;
    expect(campaign).toMatchObject({ name: 'quarterly', origin: 'config', status: 'open', openedBy: 'system' });
    expect(campaign.deadline.getTime() - campaign.openedAt.getTime()).toBe(7 * 86_400_000);
    const items = await listReviewItems(store().db, { campaignId });
    // Scope is prod-db only: other/readonly is not reviewed.
    expect(items.every((i) => i.target === 'prod-db')).toBe(true);
    const readonly = await item('alice', 'readonly');
    expect(readonly.reviewers).toEqual({ users: [], groups: ['sre-leads'] });
    expect(readonly.evidence).toMatchObject({ uses: 1, eligibleVia: { policy: 'sre-readonly', groups: ['sre'] }, reasons: ['look at the orders table'] });
    const admin = await item('alice', 'admin');
    expect(admin).toMatchObject({ highRisk: true, reviewers: { users: ['carol'], groups: [] } });
    expect(admin.evidence).toMatchObject({ uses: 1, breakGlassUses: 1 });
    await item('dave', 'admin');
    await item('bob', 'readonly');
    const standing = await item('dba-dave', 'admin', 'standing');
    expect(standing.findingId).toMatch(/^fnd_/);
    expect(standing.evidence).toMatchObject({ account: 'dba-dave', reason: 'unmanaged' });
    const opened = await events('review.opened');
    expect(opened).toEqual([expect.objectContaining({ subject: campaignId, data: expect.objectContaining({ name: 'quarterly', items: items.length }) })]);
    // The reviewers are told (the outbox, in the campaign's transaction); nobody else is.
    const told = await listDeliveries(store().db, { event: 'review.opened' });
    expect(told.map((d) => d.recipient).sort()).toEqual(['bob', 'carol']);
    const next = await store().db.selectFrom('jobs').select(['kind', 'due_at']).where('kind', 'in', ['review_open', 'review_due']).execute();
    expect(next.map((j) => j.kind).sort()).toEqual(['review_due', 'review_open']);
  });

  it('refuses a reviewer their own access, audits it, and writes nothing of the batch', async () => {
    const own = await item('bob', 'readonly');
    const others = await item('alice', 'readonly');
    await expect(
      t.engine.decideReviewItems({ itemIds: [others.id, own.id], decision: 'keep', justification: 'still on the team', by: bob }),
    ).rejects.toMatchObject({
      code: 'self_approval',
    });
    expect((await item('alice', 'readonly')).decision).toBeNull();
    expect(await events('review.decision_refused')).toEqual([expect.objectContaining({ actor: 'bob', subject: own.id })]);
  });

  it('refuses people who do not review the item, and keep on high-risk access without a justification', async () => {
    const admin = await item('alice', 'admin');
    await expect(t.engine.decideReviewItems({ itemIds: [admin.id], decision: 'keep', justification: 'ok', by: bob })).rejects.toMatchObject({
      code: 'not_found',
    });
    await expect(t.engine.decideReviewItems({ itemIds: [admin.id], decision: 'keep', justification: 'ok', by: carol })).rejects.toMatchObject({
      code: 'validation_failed',
    });
    expect((await item('alice', 'admin')).decision).toBeNull();
    const { items } = await t.engine.decideReviewItems({ itemIds: [admin.id], decision: 'keep', justification: 'on call for the orders service', by: carol });
    expect(items[0]).toMatchObject({ decision: 'keep', outcome: 'kept', decidedBy: 'carol' });
    await expect(t.engine.decideReviewItems({ itemIds: [admin.id], decision: 'remove', justification: '', by: carol })).rejects.toMatchObject({
      code: 'invalid_transition',
    });
  });

  it('"remove" on eligible access proposes a config change; on standing access removes it at the target', async () => {
    const dave = await item('dave', 'admin');
    const standing = await item('dba-dave', 'admin', 'standing');
    const { items } = await t.engine.decideReviewItems({ itemIds: [dave.id, standing.id], decision: 'remove', justification: 'left the team', by: carol });
    expect(items.find((i) => i.id === dave.id)).toMatchObject({
      outcome: 'change_proposed',
      outcomeDetail: { policy: 'sre-admin', change: expect.stringContaining('remove "dave" from policies[name=sre-admin].subjects.users') },
    });
    expect(items.find((i) => i.id === standing.id)).toMatchObject({ outcome: 'removed' });
    expect(t.noop.hasAccess('prod-db', 'admin', 'dba-dave')).toBe(false);
    expect((await events('finding.remediated')).map((e) => e.subject)).toContain(standing.findingId);
    expect((await events('review.access_removed')).map((e) => e.subject)).toEqual([standing.id]);
  });

  it('reminds reviewers, and at the deadline (database clock) gives unanswered items the default and closes', async () => {
    await store()
      .db.updateTable('jobs')
      .set({ due_at: new Date(0) })
      .where('kind', '=', 'review_due')
      .execute();
    t.engine.scheduler.poke();
    await waitFor(
      () => events('review.reminder'),
      (e) => e.length === 1,
    );
    expect((await listDeliveries(store().db, { event: 'review.reminder' })).map((d) => d.recipient)).toContain('bob');
    await store()
      .db.updateTable('review_campaigns')
      .set({ deadline: new Date(Date.now() - 60_000) })
      .where('id', '=', campaignId)
      .execute();
    await store()
      .db.updateTable('jobs')
      .set({ due_at: new Date(0) })
      .where('kind', '=', 'review_due')
      .execute();
    t.engine.scheduler.poke();
    await waitFor(
      () => listReviewCampaigns(store().db),
      (c) => c[0]?.status === 'closed',
    );
    const readonly = await item('alice', 'readonly');
    expect(readonly).toMatchObject({ decision: 'remove', byDefault: true, decidedBy: 'system', outcome: 'change_proposed' });
    expect(await events('review.closed')).toEqual([expect.objectContaining({ actor: 'system', data: expect.objectContaining({ default: 'remove' }) })]);
    const undecided = await listReviewItems(store().db, { campaignId, undecided: true });
    expect(undecided).toEqual([]);
  });
});

describe('access review config', () => {
  it('refuses a deadline longer than the recurrence, and a campaign without reviewers', async () => {
    const { parseConfig } = await import('../config/index.js');
    const base = CONFIG.split('reviews:')[0]!;
    const problems = (yaml: string) => {
      try {
        parseConfig(`${base}reviews:\n${yaml}\n`, 't.yaml', {});
        return [];
      } catch (error) {
        return (error as { details: { problems?: string[] } }).details.problems ?? [];
      }
    };
    expect(problems('  - { name: q, every: 7d, deadline: 14d, reviewers: { fallback: { groups: [x] } } }')).toEqual([
      expect.stringMatching(/reviews\[0\]\.deadline: deadline must be shorter than every/),
    ]);
    expect(problems('  - { name: q, every: 90d, reviewers: {} }')).toEqual([
      expect.stringMatching(/reviews\[0\]\.reviewers: name entitlement owners or a fallback/),
    ]);
  });
});
