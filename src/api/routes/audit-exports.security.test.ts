import { afterAll, beforeAll, expect, it } from 'vitest';
import { startTestApi, type TestApi } from '../../../test/support/api.js';
import { TEST_CONFIG } from '../../../test/support/engine.js';
import { describeEachStore } from '../../../test/support/stores.js';

const YAML = `${TEST_CONFIG}
audit:
  sinks:
    - { name: splunk, format: ocsf, transport: { type: file, path: /tmp/lapse-audit-exports-test.jsonl } }
  witnesses:
    - { name: offsite, type: file, path: /tmp/lapse-audit-exports-witness.jsonl }
`;

describeEachStore('GET /api/v1/audit/exports', ({ store }) => {
  let api: TestApi;
  beforeAll(async () => {
    api = await startTestApi(store(), { yaml: YAML });
  });
  afterAll(async () => {
    await api?.stop();
  });
  const exports = (who: Parameters<TestApi['call']>[0]) => api.call(who, { method: 'GET', url: '/api/v1/audit/exports' });

  it('refuses anonymous callers and people who are neither admin nor auditor', async () => {
    expect((await exports(null)).statusCode).toBe(401);
    const refused = await exports('alice');
    expect(refused.statusCode).toBe(403);
    expect(refused.json()).toMatchObject({ code: 'forbidden', detail: 'only admins and auditors may see the audit exports' });
  });

  it('shows auditors and admins each stream and how far it is behind', async () => {
    for (const who of ['auditor', 'root'] as const) {
      const answer = await exports(who);
      expect(answer.statusCode).toBe(200);
      const streams = answer.json().exports as { stream: string; behind: number; seq: number; lagSeconds: number }[];
      expect(streams.map((s) => s.stream)).toEqual(['sink:splunk', 'sink-checkpoints:splunk', 'witness:offsite']);
      expect(streams[0]!.seq).toBe(0);
      expect(streams[0]!.behind).toBeGreaterThan(0);
      expect(streams[0]!.lagSeconds).toBeGreaterThanOrEqual(0);
    }
  });

  it('/metrics carries the lag per stream', async () => {
    const metrics = await api.call(null, { method: 'GET', url: '/metrics' });
    expect(metrics.body).toMatch(/lapse_audit_export_behind\{stream="sink:splunk"\} [1-9]/);
    expect(metrics.body).toMatch(/lapse_audit_export_lag_seconds\{stream="sink:splunk"\}/);
    expect(metrics.body).toMatch(/lapse_audit_export_failures\{stream="witness:offsite"\} 0/);
  });
});
