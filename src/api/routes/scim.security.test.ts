import { afterAll, beforeAll, expect, it } from 'vitest';
import { issueScimToken } from '../../auth/index.js';
import { revokeScimToken } from '../../auth/scim-tokens.js';
import { startTestApi, type TestApi } from '../../../test/support/api.js';
import { describeEachStore } from '../../../test/support/stores.js';

const USER = 'urn:ietf:params:scim:schemas:core:2.0:User';
const GROUP = 'urn:ietf:params:scim:schemas:core:2.0:Group';

describeEachStore('SCIM 2.0 (security)', ({ store }) => {
  let api: TestApi;
  let scimToken = '';
  beforeAll(async () => {
    api = await startTestApi(store());
    scimToken = (await issueScimToken(store().db, { name: 'entra', createdBy: 'test', expiresInMs: 3_600_000 }, new Date())).token;
  });
  afterAll(async () => api?.stop());

  const scimWith = (authorization: string | undefined, method: 'GET' | 'POST' | 'PATCH', url: string, payload?: object) =>
    api.app.inject({
      method,
      url,
      headers: { ...(authorization !== undefined ? { authorization } : {}), ...(payload ? { 'content-type': 'application/scim+json' } : {}) },
      ...(payload ? { payload: JSON.stringify(payload) } : {}),
    });
  const scim = (method: 'GET' | 'POST' | 'PATCH', url: string, payload?: object) => scimWith(`Bearer ${scimToken}`, method, url, payload);

  it('accepts only a SCIM token: none, a wrong one, an admin API token and a revoked SCIM token are refused, and audited', async () => {
    for (const authorization of [undefined, 'Bearer lapse_scim_' + 'A'.repeat(43), `Bearer ${api.tokens.root}`, 'Basic cm9vdDpyb290', scimToken.slice(0, -1)]) {
      const res = await scimWith(authorization, 'POST', '/scim/v2/Users', { schemas: [USER], userName: 'eve@example.com' });
      expect(res.statusCode).toBe(401);
      expect(res.headers['content-type']).toContain('application/scim+json');
      expect(res.json()).toMatchObject({ schemas: ['urn:ietf:params:scim:api:messages:2.0:Error'], status: '401' });
    }
    expect(await store().db.selectFrom('users').select('id').where('name', '=', 'eve@example.com').executeTakeFirst()).toBeUndefined();
    const refusals = await store().db.selectFrom('audit_events').select('payload').execute();
    expect(refusals.filter((r) => r.payload.includes('invalid SCIM token')).length).toBeGreaterThanOrEqual(4);
    expect(refusals.some((r) => r.payload.includes(scimToken))).toBe(false);

    const spare = await issueScimToken(store().db, { name: 'spare', createdBy: 'test', expiresInMs: null }, new Date());
    expect((await scimWith(`Bearer ${spare.token}`, 'GET', '/scim/v2/Users')).statusCode).toBe(200);
    await revokeScimToken(store().db, spare.id);
    expect((await scimWith(`Bearer ${spare.token}`, 'GET', '/scim/v2/Users')).statusCode).toBe(401);
  });

  it('a SCIM token can do nothing outside SCIM', async () => {
    for (const url of ['/api/v1/grants', '/api/v1/requests', '/api/v1/auth/session', '/api/v1/tokens']) {
      expect((await api.app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${scimToken}` } })).statusCode).toBe(401);
    }
    const disable = await api.app.inject({
      method: 'POST',
      url: '/api/v1/users/alice/disable',
      payload: { reason: 'x' },
      headers: { authorization: `Bearer ${scimToken}` },
    });
    expect(disable.statusCode).toBe(401);
  });

  it('never takes over or groups a local account (an admin among them)', async () => {
    expect((await scim('POST', '/scim/v2/Users', { schemas: [USER], userName: 'root' })).json()).toMatchObject({ status: '409', scimType: 'uniqueness' });
    const root = await store().db.selectFrom('users').select(['id', 'groups', 'directory']).where('name', '=', 'root').executeTakeFirstOrThrow();
    const group = await scim('POST', '/scim/v2/Groups', { schemas: [GROUP], displayName: 'admins', members: [{ value: root.id }] });
    expect(group.json()).toMatchObject({ status: '400', scimType: 'invalidValue' });
    expect(await store().db.selectFrom('directory_groups').select('id').where('display_name', '=', 'admins').executeTakeFirst()).toBeUndefined();
    // SCIM cannot see local accounts at all.
    expect((await scim('GET', `/scim/v2/Users/${root.id}`)).statusCode).toBe(404);
    expect((await scim('GET', '/scim/v2/Users?filter=userName%20eq%20%22root%22')).json()).toMatchObject({ totalResults: 0 });
    const after = await store().db.selectFrom('users').select(['groups', 'directory']).where('id', '=', root.id).executeTakeFirstOrThrow();
    expect(after).toEqual({ groups: root.groups, directory: null });
  });

  it('refuses bad filters, bad bodies and unknown ids with SCIM errors and no change', async () => {
    for (const [filter, type] of [
      ['userName co "a"', 'invalidFilter'],
      ['password eq "x"', 'invalidFilter'],
      ['userName eq "a" or userName eq "b"', 'invalidFilter'],
      ['x'.repeat(1001), 'invalidFilter'],
    ] as const) {
      const res = await scim('GET', `/scim/v2/Users?filter=${encodeURIComponent(filter)}`);
      expect(res.statusCode).toBe(400);
      expect(res.json()).toMatchObject({ status: '400', scimType: type });
    }
    expect((await scim('GET', '/scim/v2/Groups?filter=members%20eq%20%22x%22')).json()).toMatchObject({ scimType: 'invalidFilter' });
    const broken = await api.app.inject({
      method: 'POST',
      url: '/scim/v2/Users',
      headers: { authorization: `Bearer ${scimToken}`, 'content-type': 'application/scim+json' },
      payload: '{"userName": ',
    });
    expect(broken.statusCode).toBe(400);
    expect(broken.json()).toMatchObject({ schemas: ['urn:ietf:params:scim:api:messages:2.0:Error'] });
    expect((await scim('POST', '/scim/v2/Users', { schemas: [USER], userName: 'Not A Name!' })).json()).toMatchObject({ scimType: 'invalidValue' });
    expect((await scim('POST', '/scim/v2/Users', { schemas: [USER], userName: 'x'.repeat(129) })).json()).toMatchObject({ scimType: 'invalidValue' });
    expect((await scim('PATCH', '/scim/v2/Users/usr_missing', { Operations: [{ op: 'replace', path: 'active', value: false }] })).statusCode).toBe(404);
    const frank = (await scim('POST', '/scim/v2/Users', { schemas: [USER], userName: 'frank@example.com' })).json() as { id: string };
    const tooMany = { Operations: Array.from({ length: 101 }, () => ({ op: 'replace', path: 'displayName', value: 'F' })) };
    expect((await scim('PATCH', `/scim/v2/Users/${frank.id}`, tooMany)).json()).toMatchObject({ scimType: 'tooMany' });
    // A PATCH that fails part-way changes nothing.
    const partial = await scim('PATCH', `/scim/v2/Users/${frank.id}`, {
      Operations: [
        { op: 'replace', path: 'displayName', value: 'Frank' },
        { op: 'replace', path: 'active', value: 'perhaps' },
      ],
    });
    expect(partial.json()).toMatchObject({ scimType: 'invalidValue' });
    expect((await scim('GET', `/scim/v2/Users/${frank.id}`)).json()).not.toHaveProperty('displayName');
    // A PUT that leaves out `active` does not re-enable a deprovisioned person.
    await scim('PATCH', `/scim/v2/Users/${frank.id}`, { Operations: [{ op: 'replace', path: 'active', value: false }] });
    const put = await api.app.inject({
      method: 'PUT',
      url: `/scim/v2/Users/${frank.id}`,
      headers: { authorization: `Bearer ${scimToken}`, 'content-type': 'application/scim+json' },
      payload: JSON.stringify({ schemas: [USER], userName: 'frank@example.com', displayName: 'Frank' }),
    });
    expect(put.json()).toMatchObject({ active: false, displayName: 'Frank' });
  });
});
