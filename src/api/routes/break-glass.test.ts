import { afterAll, beforeAll, expect, it } from 'vitest';
import { startTestApi, type CastMember, type TestApi } from '../../../test/support/api.js';
import { TEST_CONFIG } from '../../../test/support/engine.js';
import { describeEachStore } from '../../../test/support/stores.js';
import { parseConfig } from '../../config/index.js';

/**
 * What the caller may break glass into: listed by GET /api/v1/break-glass/entitlements and
 * enforced by POST /api/v1/break-glass with the same rule; refusals speak to the requester.
 */
describeEachStore('break-glass scope', ({ store }) => {
  let api: TestApi;
  beforeAll(async () => {
    api = await startTestApi(store());
  });
  afterAll(async () => {
    await api?.stop();
  });

  const listed = async (who: CastMember) => {
    const response = await api.call(who, { method: 'GET', url: '/api/v1/break-glass/entitlements' });
    expect(response.statusCode, response.body).toBe(200);
    return response.json<{ items: { target: string; entitlement: string }[]; maxDurationMs: number; minReasonLength: number }>();
  };
  const breakGlass = (who: CastMember, target: string, entitlement: string) =>
    api.call(who, {
      method: 'POST',
      url: '/api/v1/break-glass',
      payload: { target, entitlement, duration: '10m', reason: 'the primary is down, failing over now' },
    });

  it('lists only what the caller may break glass into, and refuses anything else the same way', async () => {
    const alice = await listed('alice');
    expect(alice.items.map((i) => `${i.target}/${i.entitlement}`)).toEqual(['prod-db/readonly', 'prod-db/admin', 'prod-db/ephemeral']);
    expect(alice).toMatchObject({ maxDurationMs: 3_600_000, minReasonLength: 20 });
    expect((await listed('bob')).items).toEqual([]);
    expect((await api.call(null, { method: 'GET', url: '/api/v1/break-glass/entitlements' })).statusCode).toBe(401);

    const uncovered = await breakGlass('alice', 'flaky', 'readonly');
    expect(uncovered.statusCode).toBe(403);
    expect(uncovered.json()).toMatchObject({
      detail: 'break-glass does not cover flaky/readonly',
      hint: expect.stringContaining('/api/v1/break-glass/entitlements'),
    });
    // Whoever may not break glass learns nothing about which targets exist.
    const stranger = await breakGlass('bob', 'no-such-target', 'x');
    expect(stranger.statusCode).toBe(403);
    expect(stranger.json()).toMatchObject({ detail: 'bob may not use break-glass' });
    expect((await breakGlass('alice', 'prod-db', 'readonly')).statusCode).toBe(201);
  });

  it('lists nothing while break-glass is off, and the refusal does not send requesters to lapse.yaml', async () => {
    await api.t.engine.reloadConfig(parseConfig(TEST_CONFIG.replace('enabled: true', 'enabled: false'), 'test.yaml', {}));
    expect((await listed('alice')).items).toEqual([]);
    const refused = await breakGlass('alice', 'prod-db', 'admin');
    expect(refused.statusCode).toBe(403);
    expect(refused.json()).toMatchObject({ code: 'forbidden', detail: 'break-glass is turned off on this server' });
    expect(refused.body).not.toMatch(/lapse\.yaml|breakGlass\./);
  });
});
