import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { offline } from '../../../test/support/environment.js';
import { startTestApi, type TestApi } from '../../../test/support/api.js';
import { describeEachStore } from '../../../test/support/stores.js';
import { keyIdOf, writeCheckpoint } from '../../audit/index.js';
import { buildApiServer, type ApiServer } from '../index.js';
import { authFor } from '../../../test/support/auth-service.js';

const CAMPAIGN = {
  name: 'adhoc-prod',
  scope: { targets: ['prod-db'] },
  deadline: '7d',
  reviewers: { owners: { 'prod-db/admin': { users: ['carol'] } }, fallback: { groups: ['sre-leads'] } },
  whenUnanswered: 'remove',
  highRisk: ['prod-db/admin'],
};

/** Ids and instants differ from run to run; the golden files hold everything else. */
function normalised(csv: string): string {
  return csv.replace(/\b(rvc|rvi|req|grt|fnd)_[0-9a-z]+/g, '$1_<id>').replace(/\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z/g, '<time>');
}

describeEachStore('compliance reports', ({ store, backend }) => {
  let api: TestApi;
  let app: ApiServer;
  const dir = mkdtempSync(join(tmpdir(), 'lapse-report-'));
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const from = new Date(Date.now() - 86_400_000).toISOString().slice(0, 10);
  const to = new Date(Date.now() + 2 * 86_400_000).toISOString().slice(0, 10);

  beforeAll(async () => {
    api = await startTestApi(store());
    // A server that knows the checkpoint public key, as `lapse serve` does.
    app = await buildApiServer({ engine: api.t.engine, auth: authFor(api.t.engine), version: 'test', checkpointKeys: [publicKey] });
    const opened = await api.call('root', { method: 'POST', url: '/api/v1/reviews/campaigns', payload: CAMPAIGN });
    expect(opened.statusCode).toBe(201);
    const bobs = (await api.call('bob', { method: 'GET', url: '/api/v1/reviews/queue' })).json().items as { id: string; entitlement: string }[];
    const readonly = bobs.find((i) => i.entitlement === 'readonly')!;
    expect(
      (
        await api.call('bob', {
          method: 'POST',
          url: '/api/v1/reviews/decisions',
          payload: { items: [readonly.id], decision: 'keep', justification: 'reads the orders table daily' },
        })
      ).statusCode,
    ).toBe(200);
    const [admin] = (await api.call('carol', { method: 'GET', url: '/api/v1/reviews/queue' })).json().items as { id: string }[];
    expect(
      (
        await api.call('carol', {
          method: 'POST',
          url: '/api/v1/reviews/decisions',
          payload: { items: [admin!.id], decision: 'remove', justification: 'no longer on call' },
        })
      ).statusCode,
    ).toBe(200);
    expect((await api.call('root', { method: 'POST', url: `/api/v1/reviews/campaigns/${opened.json().campaign.id}/close` })).statusCode).toBe(200);
  }, 120_000);
  afterAll(async () => {
    await app?.close();
    await api?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const report = (who: 'root' | 'auditor' | 'alice', kind: string, query: string) =>
    app.inject({ method: 'GET', url: `/api/v1/reports/${kind}?${query}`, headers: { authorization: `Bearer ${api.tokens[who]}` } });

  it('lists every decision of the campaign as CSV (golden file)', async () => {
    const res = await report('auditor', 'access-reviews', `from=${from}&to=${to}`);
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/csv/);
    expect(res.headers['content-disposition']).toMatch(/attachment; filename="lapse-access-reviews-/);
    await expect(normalised(res.body)).toMatchFileSnapshot(`../../../test/golden/access-reviews.${backend}.csv`);
  });

  // pdftotext (poppler-utils) is installed by .ci/run; the offline suite leaves it out.
  it.skipIf(offline())(
    'writes a PDF whose cover states the period, the chain head, the covering checkpoint, the verification and the config version',
    async () => {
      // Signed now: it covers every event so far, the last of the period included.
      await writeCheckpoint(store().db, { privateKey, publicKey, keyId: keyIdOf(publicKey) });
      const res = await report('root', 'access-reviews', `from=${from}&to=${to}&format=pdf`);
      expect(res.statusCode).toBe(200);
      expect(res.headers['content-type']).toBe('application/pdf');
      const file = join(dir, 'report.pdf');
      writeFileSync(file, res.rawPayload);
      const text = execFileSync('pdftotext', ['-layout', file, '-'], { encoding: 'utf8' });
      expect(text).toContain('Access review results');
      expect(text).toContain(`Period: ${from}T00:00:00.000Z to ${to}T00:00:00.000Z`);
      const head = /Head: seq (\d+)\s+Head hash: ([0-9a-f]{64})/.exec(text);
      expect(head).not.toBeNull();
      const stored = await store().db.selectFrom('audit_events').select('hash').where('seq', '=', head![1]!).executeTakeFirstOrThrow();
      expect(stored.hash).toBe(head![2]);
      expect(text).toMatch(
        new RegExp(`Signed checkpoint covering it: seq ${head![1]}, key ${keyIdOf(publicKey)}, signed \\S+\\s+Checkpoint hash: ${head![2]}`),
      );
      expect(text).toMatch(/Verification \(lapse audit verify, now\): OK; \d+ events; 0 problem\(s\)/);
      expect(text).toContain(`In force at the end of the period: ${api.t.engine.config.version}`);
      expect(text).toContain('decision: keep: 1');
      expect(text).toContain('decision: remove: 2');
      expect(text).toContain('decided by default: 1');
      expect(text).toContain('reads the orders table daily');
    },
  );

  it('covers privileged activity, break-glass, standing access and config changes', async () => {
    await api.t.engine.breakGlass({
      principal: { id: 'alice', kind: 'user', groups: ['sre', 'oncall'] },
      target: 'prod-db',
      entitlement: 'admin',
      durationMs: 600_000,
      reason: 'outage in the orders service',
    });
    const glass = await report('auditor', 'break-glass', `from=${from}&to=${to}`);
    expect(glass.body.split('\r\n')[0] ?? glass.body.split('\n')[0]).toMatch(/^request,kind,person,access/);
    expect(glass.body).toContain('outage in the orders service');
    expect((await report('auditor', 'privileged-activity', `from=${from}&to=${to}`)).body).toContain('break_glass');
    expect((await report('auditor', 'standing-access', `from=${from}&to=${to}`)).statusCode).toBe(200);
    expect((await report('auditor', 'config-changes', `from=${from}&to=${to}`)).body).toContain('config.loaded');
  });

  it('refuses people who are not admins or auditors, unknown kinds and bad periods', async () => {
    const refused = await report('alice', 'access-reviews', `from=${from}&to=${to}`);
    expect(refused.statusCode).toBe(403);
    expect(refused.json()).toMatchObject({ code: 'forbidden' });
    expect((await app.inject({ method: 'GET', url: `/api/v1/reports/access-reviews?from=${from}&to=${to}` })).statusCode).toBe(401);
    expect((await report('auditor', 'everything', `from=${from}&to=${to}`)).statusCode).toBe(400);
    expect((await report('auditor', 'access-reviews', `from=yesterday&to=${to}`)).json().detail).toMatch(/write a date/);
    expect((await report('auditor', 'access-reviews', `from=${to}&to=${from}`)).json().detail).toMatch(/--from must be before --to/);
    expect((await report('auditor', 'access-reviews', `from=2020-01-01&to=${to}`)).json().detail).toMatch(/longer than two years/);
  });
});
