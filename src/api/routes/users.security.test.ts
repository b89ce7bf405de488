import { afterAll, beforeAll, expect, it } from 'vitest';
import { startTestApi, type TestApi } from '../../../test/support/api.js';
import { describeEachStore } from '../../../test/support/stores.js';

describeEachStore('/api/v1/users/:name/disable|enable (security)', ({ store }) => {
  let api: TestApi;
  beforeAll(async () => {
    api = await startTestApi(store());
  });
  afterAll(async () => api?.stop());

  const disable = (who: Parameters<TestApi['call']>[0], name: string, payload: object = { reason: 'left the company' }) =>
    api.call(who, { method: 'POST', url: `/api/v1/users/${name}/disable`, payload });

  it('refuses anonymous callers, non-admins and admin-scoped tokens of non-admins', async () => {
    expect((await disable(null, 'mallory')).statusCode).toBe(401);
    expect((await disable('alice', 'mallory')).statusCode).toBe(403);
    expect((await disable('auditor', 'mallory')).statusCode).toBe(403);
    const aliceAdmin = await api.tokenWith('alice', ['admin']);
    const res = await api.app.inject({
      method: 'POST',
      url: '/api/v1/users/mallory/disable',
      payload: { reason: 'x' },
      headers: { authorization: `Bearer ${aliceAdmin}` },
    });
    expect(res.statusCode).toBe(403);
    // Mallory is untouched: her token still works.
    expect((await api.call('mallory', { method: 'GET', url: '/api/v1/grants' })).statusCode).toBe(200);
  });

  it('refuses bad input with a clear error and no change', async () => {
    const noReason = await disable('root', 'mallory', {});
    expect(noReason.statusCode).toBe(400);
    expect((await disable('root', 'mallory', { reason: 'x'.repeat(501) })).statusCode).toBe(400);
    expect((await disable('root', 'Not A Name')).statusCode).toBe(400);
    expect((await disable('root', 'nobody')).statusCode).toBe(404);
    expect((await disable('root', 'root')).json()).toMatchObject({ code: 'validation_failed', detail: expect.stringContaining('yourself') });
    expect((await api.call('mallory', { method: 'GET', url: '/api/v1/grants' })).statusCode).toBe(200);
  });

  it('an admin disables a person: their token stops working at once; enabling does not bring it back', async () => {
    const res = await disable('root', 'mallory');
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ changed: true, apiAccessRevoked: 1, user: { name: 'mallory' } });
    expect((await api.call('mallory', { method: 'GET', url: '/api/v1/grants' })).statusCode).toBe(401);
    const enabled = await api.call('root', { method: 'POST', url: '/api/v1/users/mallory/enable', payload: { reason: 'back' } });
    expect(enabled.json()).toMatchObject({ changed: true });
    expect((await api.call('mallory', { method: 'GET', url: '/api/v1/grants' })).statusCode).toBe(401);
  });
});
