import { afterAll, beforeAll, expect, it } from 'vitest';
import { startTestApi, type TestApi } from '../../../test/support/api.js';
import { describeEachStore } from '../../../test/support/stores.js';

const CAMPAIGN = {
  name: 'adhoc-prod',
  scope: { targets: ['prod-db'] },
  deadline: '7d',
  reviewers: { owners: { 'prod-db/admin': { users: ['carol'] } }, fallback: { users: ['alice'], groups: ['sre-leads'] } },
  whenUnanswered: 'flag',
  highRisk: ['prod-db/admin'],
};

describeEachStore('access review routes (security)', ({ store }) => {
  let api: TestApi;
  let campaignId: string;
  beforeAll(async () => {
    api = await startTestApi(store());
  });
  afterAll(async () => {
    await api?.stop();
  });
  const audited = async (action: string) => {
    const rows = await store().db.selectFrom('audit_events').select('payload').orderBy('seq').execute();
    return rows.map((r) => JSON.parse(r.payload) as { action: string; actor: string; subject?: string }).filter((e) => e.action === action);
  };
  const queue = async (who: 'alice' | 'bob' | 'carol' | 'mallory') => {
    const res = await api.call(who, { method: 'GET', url: '/api/v1/reviews/queue' });
    expect(res.statusCode).toBe(200);
    return res.json().items as { id: string; principalId: string; entitlement: string; decision: string | null }[];
  };
  const decide = (who: 'alice' | 'bob' | 'carol' | 'mallory' | 'root', body: unknown) =>
    api.call(who, { method: 'POST', url: '/api/v1/reviews/decisions', payload: body as object });

  it('lets only admins open a campaign, and only admins and auditors read campaigns', async () => {
    expect((await api.call(null, { method: 'GET', url: '/api/v1/reviews/campaigns' })).statusCode).toBe(401);
    expect((await api.call('auditor', { method: 'POST', url: '/api/v1/reviews/campaigns', payload: CAMPAIGN })).statusCode).toBe(403);
    expect((await api.call('alice', { method: 'POST', url: '/api/v1/reviews/campaigns', payload: CAMPAIGN })).statusCode).toBe(403);
    const bad = await api.call('root', { method: 'POST', url: '/api/v1/reviews/campaigns', payload: { ...CAMPAIGN, whenUnanswered: 'shrug' } });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().detail).toMatch(/whenUnanswered is keep, remove or flag/);
    const opened = await api.call('root', { method: 'POST', url: '/api/v1/reviews/campaigns', payload: CAMPAIGN });
    expect(opened.statusCode).toBe(201);
    expect(opened.json()).toMatchObject({ campaign: { name: 'adhoc-prod', origin: 'api', openedBy: 'root', status: 'open' } });
    expect(opened.json().items).toBeGreaterThan(0);
    campaignId = opened.json().campaign.id;

    const refused = await api.call('alice', { method: 'GET', url: '/api/v1/reviews/campaigns' });
    expect(refused.statusCode).toBe(403);
    expect(await audited('review.read_refused')).toEqual([expect.objectContaining({ actor: 'alice' })]);
    expect((await api.call('alice', { method: 'GET', url: `/api/v1/reviews/campaigns/${campaignId}` })).statusCode).toBe(403);
    const listed = await api.call('auditor', { method: 'GET', url: '/api/v1/reviews/campaigns' });
    expect(listed.json().campaigns).toEqual([expect.objectContaining({ id: campaignId, decided: 0, overdue: false })]);
  });

  it('shows each reviewer their own queue, never their own access', async () => {
    const bobs = await queue('bob');
    expect(bobs.map((i) => `${i.principalId} ${i.entitlement}`).sort()).toEqual(['alice ephemeral', 'alice readonly']);
    expect((await queue('carol')).map((i) => `${i.principalId} ${i.entitlement}`)).toEqual(['alice admin']);
    expect(await queue('alice')).toEqual([]);
    expect(await queue('mallory')).toEqual([]);
  });

  it("refuses self-review, other people's items, the wrong scope and bad input, writing nothing", async () => {
    const [item] = await queue('bob');
    const own = await decide('alice', { items: [item!.id], decision: 'keep', justification: 'I still need it' });
    expect(own.statusCode).toBe(403);
    expect(own.json()).toMatchObject({ code: 'self_approval' });
    expect(await audited('review.decision_refused')).toEqual([expect.objectContaining({ actor: 'alice', subject: item!.id })]);
    expect((await decide('mallory', { items: [item!.id], decision: 'remove' })).json()).toMatchObject({ code: 'not_found' });
    const readOnly = await api.tokenWith('bob', ['read']);
    const scoped = await api.app.inject({
      method: 'POST',
      url: '/api/v1/reviews/decisions',
      payload: { items: [item!.id], decision: 'keep' },
      headers: { authorization: `Bearer ${readOnly}` },
    });
    expect(scoped.statusCode).toBe(403);
    for (const body of [
      { items: [item!.id], decision: 'maybe' },
      { items: [], decision: 'keep' },
      { items: ['req_123'], decision: 'keep' },
      { items: [item!.id], decision: 'keep', justification: 'x'.repeat(2001) },
      { items: [item!.id], decision: 'keep', extra: 1 },
    ]) {
      expect((await decide('bob', body)).statusCode).toBe(400);
    }
    const [admin] = await queue('carol');
    const noWhy = await decide('carol', { items: [admin!.id], decision: 'keep' });
    expect(noWhy.statusCode).toBe(400);
    expect(noWhy.json().detail).toMatch(/needs a justification/);
    expect((await queue('bob')).length).toBe(2);
    expect((await queue('carol')).length).toBe(1);
  });

  it('takes a bulk decision with one justification, and lets only admins close', async () => {
    const items = await queue('bob');
    const res = await decide('bob', { items: items.map((i) => i.id), decision: 'keep', justification: 'on the on-call rota' });
    expect(res.statusCode).toBe(200);
    expect(res.json().items.map((i: { outcome: string }) => i.outcome)).toEqual(['kept', 'kept']);
    expect(await queue('bob')).toEqual([]);
    expect((await api.call('auditor', { method: 'POST', url: `/api/v1/reviews/campaigns/${campaignId}/close` })).statusCode).toBe(403);
    const closed = await api.call('root', { method: 'POST', url: `/api/v1/reviews/campaigns/${campaignId}/close` });
    expect(closed.statusCode).toBe(200);
    expect(closed.json()).toMatchObject({ campaign: { status: 'closed', closedBy: 'root' }, defaulted: 1, outcomes: { kept: 2, flagged: 1 } });
    expect((await api.call('root', { method: 'POST', url: `/api/v1/reviews/campaigns/${campaignId}/close` })).statusCode).toBe(409);
    const report = await api.call('auditor', { method: 'GET', url: `/api/v1/reviews/campaigns/${campaignId}` });
    expect(report.json().items.find((i: { entitlement: string }) => i.entitlement === 'admin')).toMatchObject({
      decision: 'unsure',
      byDefault: true,
      decidedBy: 'system',
    });
  });
});
