import { afterAll, beforeAll, expect, it } from 'vitest';
import { startTestApi, type TestApi } from '../../../test/support/api.js';
import { TEST_CONFIG } from '../../../test/support/engine.js';
import { describeEachStore } from '../../../test/support/stores.js';

/** A target that answers after the 2 s connector deadline of TEST_CONFIG: its check fails. */
const YAML = TEST_CONFIG.replace('targets:\n', 'targets:\n  slow:\n    connector: noop\n    settings: { delay: 5000 }\n    entitlements: { readonly: {} }\n');

describeEachStore('target checks in /readyz and the admin API', ({ store }) => {
  let api: TestApi;
  beforeAll(async () => {
    api = await startTestApi(store(), { yaml: YAML });
  });
  afterAll(async () => {
    await api?.stop();
  });

  const readyTargets = async () => (await api.call(null, { method: 'GET', url: '/readyz' })).json<{ targets: Record<string, string> }>().targets;
  const configTargets = async () =>
    (await api.call('root', { method: 'GET', url: '/api/v1/config' })).json<{
      targets: { name: string; check: { status: string; problem: string | null; code: string | null } }[];
    }>().targets;

  it("says pending before any check, then each target's state; the reason only to admins", { timeout: 20_000 }, async () => {
    expect(await readyTargets()).toEqual({ slow: 'pending', 'prod-db': 'pending', flaky: 'pending' });
    expect((await configTargets()).map((t) => [t.name, t.check.status])).toEqual([
      ['slow', 'pending'],
      ['prod-db', 'pending'],
      ['flaky', 'pending'],
    ]);

    const refused = await api.call('alice', { method: 'POST', url: '/api/v1/config/targets/check', payload: {} });
    expect(refused.statusCode).toBe(403);
    const run = await api.call('root', { method: 'POST', url: '/api/v1/config/targets/check', payload: {} });
    expect(run.statusCode).toBe(200);
    const slow = run.json<{ targets: { name: string; check: { status: string; code: string; problem: string } }[] }>().targets.find((t) => t.name === 'slow')!;
    expect(slow.check).toMatchObject({
      status: 'failed',
      code: 'connector_timeout',
      problem: expect.stringContaining('checking target slow did not finish within 2000 ms'),
    });

    const ready = await api.call(null, { method: 'GET', url: '/readyz' });
    expect(ready.statusCode).toBe(200);
    expect(ready.json()).toMatchObject({ status: 'ready', targets: { slow: 'failed', 'prod-db': 'ok', flaky: 'ok' } });
    expect(ready.body).not.toContain('did not finish');
    expect((await configTargets()).find((t) => t.name === 'slow')!.check).toMatchObject({ status: 'failed', code: 'connector_timeout' });

    const one = await api.call('root', { method: 'POST', url: '/api/v1/config/targets/check', payload: { target: 'prod-db' } });
    expect(one.json<{ targets: { name: string }[] }>().targets.map((t) => t.name)).toEqual(['prod-db']);
    const unknown = await api.call('root', { method: 'POST', url: '/api/v1/config/targets/check', payload: { target: 'nope' } });
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json()).toMatchObject({ code: 'not_found', detail: expect.stringContaining('there is no target nope') });
  });

  it('forgets results made under another config: a reload shows pending until checked again', async () => {
    const { parseConfig } = await import('../../config/index.js');
    await api.t.engine.reloadConfig(parseConfig(YAML.replace('read only', 'read only (v2)'), 'test.yaml', {}));
    expect(await readyTargets()).toEqual({ slow: 'pending', 'prod-db': 'pending', flaky: 'pending' });
    await api.t.engine.checkTargets('prod-db');
    expect((await readyTargets())['prod-db']).toBe('ok');
  });
});
