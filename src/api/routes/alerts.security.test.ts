import { afterAll, beforeAll, expect, it } from 'vitest';
import { startTestApi, type TestApi } from '../../../test/support/api.js';
import { alice } from '../../../test/support/engine.js';
import { describeEachStore } from '../../../test/support/stores.js';

describeEachStore('alerts routes (security)', ({ store }) => {
  let api: TestApi;
  let alertId: string;
  beforeAll(async () => {
    api = await startTestApi(store());
    await api.t.engine.breakGlass({ principal: alice, target: 'prod-db', entitlement: 'admin', reason: 'primary is down, failing over', durationMs: 600_000 });
    await api.t.engine.detectAnomalies();
    alertId = (await api.t.engine.listAlerts({ limit: 1 }))[0]!.id;
  });
  afterAll(async () => {
    await api?.stop();
  });

  const list = (who: Parameters<TestApi['call']>[0], query = '') => api.call(who, { method: 'GET', url: `/api/v1/alerts${query}` });
  const act = (who: Parameters<TestApi['call']>[0], body: unknown, id = alertId) =>
    api.call(who, { method: 'POST', url: `/api/v1/alerts/${id}`, payload: body as object });
  const audited = async (action: string) => {
    const rows = await store().db.selectFrom('audit_events').select('payload').orderBy('seq').execute();
    return rows.map((r) => JSON.parse(r.payload) as { action: string; actor: string }).filter((e) => e.action === action);
  };

  it('refuses anonymous callers', async () => {
    expect((await list(null)).statusCode).toBe(401);
    expect((await act(null, { action: 'resolve' })).statusCode).toBe(401);
  });

  it('shows alerts to admins and auditors only, and audits the refusal', async () => {
    const refused = await list('alice');
    expect(refused.statusCode).toBe(403);
    expect(await audited('alerts.list_refused')).toEqual([expect.objectContaining({ actor: 'alice' })]);
    for (const who of ['auditor', 'root'] as const) {
      const answer = await list(who, '?status=open');
      expect(answer.statusCode).toBe(200);
      expect(answer.json().alerts).toEqual([expect.objectContaining({ id: alertId, kind: 'break_glass_outside_incident', principalId: 'alice' })]);
    }
  });

  it('lets only admins act, refuses bad input with a clear error, and changes nothing when refused', async () => {
    expect((await act('alice', { action: 'resolve' })).statusCode).toBe(403);
    expect((await act('auditor', { action: 'resolve' })).statusCode).toBe(403);
    const readOnlyRoot = await api.tokenWith('root', ['read']);
    const scoped = await api.app.inject({
      method: 'POST',
      url: `/api/v1/alerts/${alertId}`,
      payload: { action: 'resolve' },
      headers: { authorization: `Bearer ${readOnlyRoot}` },
    });
    expect(scoped.statusCode).toBe(403);
    const bad = await act('root', { action: 'close', extra: 1 });
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toMatchObject({ code: 'validation_failed' });
    expect((await act('root', { action: 'resolve', note: 'x'.repeat(2001) })).statusCode).toBe(400);
    expect((await act('root', { action: 'resolve' }, 'alr_missing')).statusCode).toBe(404);
    expect((await list('root')).json().alerts[0]).toMatchObject({ status: 'open', note: null });

    const acked = await act('root', { action: 'acknowledge', note: 'looking' });
    expect(acked.statusCode).toBe(200);
    expect(acked.json().alert).toMatchObject({ status: 'acknowledged', acknowledgedBy: 'root', note: 'looking' });
    expect((await act('root', { action: 'resolve' })).json().alert).toMatchObject({ status: 'resolved', resolvedBy: 'root' });
    const again = await act('root', { action: 'resolve' });
    expect(again.statusCode).toBe(409);
    expect(again.json()).toMatchObject({ code: 'invalid_transition' });
  });
});
