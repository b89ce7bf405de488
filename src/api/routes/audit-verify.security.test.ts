import { sql } from 'kysely';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startTestApi, type TestApi } from '../../../test/support/api.js';
import { describeEachStore } from '../../../test/support/stores.js';

describeEachStore('POST /api/v1/audit/verify', ({ store }) => {
  let api: TestApi;
  beforeAll(async () => {
    api = await startTestApi(store());
  });
  afterAll(async () => {
    await api?.stop();
  });

  const verify = (who: Parameters<TestApi['call']>[0]) => api.call(who, { method: 'POST', url: '/api/v1/audit/verify' });
  const audited = async (action: string) => {
    const rows = await store().db.selectFrom('audit_events').select('payload').orderBy('seq').execute();
    return rows.map((r) => JSON.parse(r.payload) as { action: string; actor: string; data?: Record<string, unknown> }).filter((e) => e.action === action);
  };

  it('refuses anonymous callers and people who are neither admin nor auditor, and audits the refusal', async () => {
    expect((await verify(null)).statusCode).toBe(401);
    const refused = await verify('alice');
    expect(refused.statusCode).toBe(403);
    expect(refused.json()).toMatchObject({ code: 'forbidden', detail: 'only admins and auditors may verify the audit log' });
    expect((await audited('authz.refused')).some((e) => e.actor === 'alice' && e.data?.route === '/api/v1/audit/verify')).toBe(true);
  });

  it('lets auditors and admins verify an intact chain, and records who verified', async () => {
    for (const who of ['auditor', 'root'] as const) {
      const answer = await verify(who);
      expect(answer.statusCode).toBe(200);
      const result = answer.json();
      expect(result).toMatchObject({ ok: true, problems: [], problemsOmitted: 0, checkpointKeyKnown: false });
      expect(result.events).toBeGreaterThan(0);
    }
    expect((await audited('audit.verified')).map((e) => e.actor)).toEqual(expect.arrayContaining(['auditor', 'root']));
  });

  it('reports an edited event as broken', async () => {
    const { seq } = await store().db.selectFrom('audit_events').select('seq').orderBy('seq').limit(1).executeTakeFirstOrThrow();
    await sql`UPDATE audit_events SET payload = replace(payload, '"actor":"system"', '"actor":"mallory"') WHERE seq = ${seq}`.execute(store().db);
    const result = (await verify('auditor')).json();
    expect(result.ok).toBe(false);
    expect(result.problems[0]).toMatchObject({ seq: Number(seq), kind: 'edited' });
  });
});
