import { afterAll, beforeAll, expect, it } from 'vitest';
import { issueApiToken, issueScimToken } from '../../auth/index.js';
import { getGrant } from '../../store/index.js';
import { startTestApi, type TestApi } from '../../../test/support/api.js';
import { waitFor } from '../../../test/support/engine.js';
import { describeEachStore } from '../../../test/support/stores.js';

const PATCH = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';
const USER = 'urn:ietf:params:scim:schemas:core:2.0:User';
const GROUP = 'urn:ietf:params:scim:schemas:core:2.0:Group';

/**
 * The SCIM server driven with the requests Okta and Entra ID document (their SCIM guides' examples),
 * and what they change in Lapse: policies and approval stages see group changes at once, and
 * deactivation deprovisions.
 */
describeEachStore('SCIM 2.0 (/scim/v2)', ({ store }) => {
  let api: TestApi;
  let scimToken = '';
  beforeAll(async () => {
    api = await startTestApi(store());
    scimToken = (await issueScimToken(store().db, { name: 'okta', createdBy: 'test', expiresInMs: null }, new Date())).token;
  });
  afterAll(async () => api?.stop());

  const scim = (method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE', url: string, payload?: object) =>
    api.app.inject({
      method,
      url,
      headers: { authorization: `Bearer ${scimToken}`, ...(payload ? { 'content-type': 'application/scim+json' } : {}) },
      ...(payload ? { payload: JSON.stringify(payload) } : {}),
    });
  const asPerson = (token: string, method: 'GET' | 'POST', url: string, payload?: object) =>
    api.app.inject({ method, url, headers: { authorization: `Bearer ${token}` }, ...(payload ? { payload } : {}) });

  it('serves the discovery documents', async () => {
    const config = await scim('GET', '/scim/v2/ServiceProviderConfig');
    expect(config.statusCode).toBe(200);
    expect(config.headers['content-type']).toContain('application/scim+json');
    expect(config.json()).toMatchObject({ patch: { supported: true }, filter: { supported: true }, bulk: { supported: false } });
    expect((await scim('GET', '/scim/v2/ResourceTypes')).json()).toMatchObject({ totalResults: 2, Resources: [{ id: 'User' }, { id: 'Group' }] });
    expect((await scim('GET', '/scim/v2/Schemas')).json()).toMatchObject({ Resources: [{ id: USER }, { id: GROUP }] });
    expect((await scim('GET', `/scim/v2/Schemas/${USER}`)).statusCode).toBe(200);
  });

  it('Okta: looks a person up, creates them, groups them, and deactivating deprovisions them', async () => {
    const lookup = await scim('GET', '/scim/v2/Users?filter=userName%20eq%20%22dana%40example.com%22&startIndex=1&count=100');
    expect(lookup.json()).toEqual({
      schemas: ['urn:ietf:params:scim:api:messages:2.0:ListResponse'],
      totalResults: 0,
      startIndex: 1,
      itemsPerPage: 0,
      Resources: [],
    });

    const created = await scim('POST', '/scim/v2/Users', {
      schemas: [USER],
      userName: 'Dana@example.com',
      name: { givenName: 'Dana', familyName: 'Scully' },
      emails: [{ primary: true, value: 'dana@example.com', type: 'work' }],
      displayName: 'Dana Scully',
      locale: 'en-US',
      externalId: '00ujl29u0le5T6Aj10h7',
      groups: [],
      password: 'okta-sends-a-password-1mz050nq',
      active: true,
    });
    expect(created.statusCode).toBe(201);
    const dana = created.json() as { id: string; userName: string; meta: { location: string } };
    expect(dana).toMatchObject({ userName: 'dana@example.com', active: true, externalId: '00ujl29u0le5T6Aj10h7', displayName: 'Dana Scully' });
    expect(created.headers.location).toBe(dana.meta.location);
    expect(created.body).not.toContain('okta-sends-a-password');
    expect((await scim('POST', '/scim/v2/Users', { schemas: [USER], userName: 'dana@example.com' })).json()).toMatchObject({
      status: '409',
      scimType: 'uniqueness',
    });

    const found = await scim('GET', '/scim/v2/Users?filter=userName%20eq%20%22DANA%40example.com%22');
    expect(found.json()).toMatchObject({ totalResults: 1, Resources: [{ id: dana.id }] });

    // Dana acts through a token of her own; what she may do follows her groups.
    const user = await store().db.selectFrom('users').select('id').where('name', '=', 'dana@example.com').executeTakeFirstOrThrow();
    const token = (
      await issueApiToken(store().db, { userId: user.id, name: 'laptop', scopes: ['read', 'request', 'approve'], expiresInMs: 3_600_000 }, new Date())
    ).token;
    const ask = () =>
      asPerson(token, 'POST', '/api/v1/requests', { target: 'prod-db', entitlement: 'readonly', duration: '1h', reason: 'INC-7: slow queries' });
    expect((await ask()).json()).toMatchObject({ request: { status: 'denied' } });

    const group = await scim('POST', '/scim/v2/Groups', { schemas: [GROUP], displayName: 'sre', members: [] });
    expect(group.statusCode).toBe(201);
    const groupId = (group.json() as { id: string }).id;
    const added = await scim('PATCH', `/scim/v2/Groups/${groupId}`, {
      schemas: [PATCH],
      Operations: [{ op: 'add', path: 'members', value: [{ value: dana.id, display: 'dana@example.com' }] }],
    });
    expect(added.statusCode).toBe(204);
    expect((await scim('GET', `/scim/v2/Groups/${groupId}`)).json()).toMatchObject({ displayName: 'sre', members: [{ value: dana.id }] });
    expect((await scim('GET', `/scim/v2/Users/${dana.id}`)).json()).toMatchObject({ groups: [{ value: groupId, display: 'sre' }] });

    // Without signing in again, the policy for group sre applies to her.
    const asked = await ask();
    expect(asked.json()).toMatchObject({ request: { status: 'approved' } });
    const grantId = (asked.json() as { request: { grantId: string } }).request.grantId;
    await waitFor(
      () => getGrant(store().db, grantId),
      (g) => g?.status === 'active',
    );

    const deactivated = await scim('PATCH', `/scim/v2/Users/${dana.id}`, { schemas: [PATCH], Operations: [{ op: 'replace', value: { active: false } }] });
    expect(deactivated.statusCode).toBe(200);
    expect(deactivated.json()).toMatchObject({ active: false });
    expect((await asPerson(token, 'GET', '/api/v1/grants')).statusCode).toBe(401);
    await waitFor(
      () => getGrant(store().db, grantId),
      (g) => g?.status === 'revoked',
    );
    expect(api.t.noop.hasAccess('prod-db', 'readonly', 'dana@example.com')).toBe(false);

    const rows = await store().db.selectFrom('audit_events').select('payload').orderBy('seq').execute();
    const events = rows.map((r) => JSON.parse(r.payload) as { action: string; actor: string; subject?: string; data?: Record<string, unknown> });
    expect(events.find((e) => e.action === 'user.disabled' && e.subject === user.id)).toMatchObject({
      actor: 'scim:okta',
      data: { reason: 'set inactive in scim' },
    });
    expect(events.find((e) => e.action === 'grant.revoked' && e.subject === grantId)).toMatchObject({ data: { deprovisioning: true } });
    expect(JSON.stringify(events)).not.toContain('okta-sends-a-password');

    // Okta renames the group and removes her by filter path.
    await scim('PATCH', `/scim/v2/Groups/${groupId}`, { schemas: [PATCH], Operations: [{ op: 'replace', value: { id: groupId, displayName: 'sre-oncall' } }] });
    await scim('PATCH', `/scim/v2/Groups/${groupId}`, { schemas: [PATCH], Operations: [{ op: 'remove', path: `members[value eq "${dana.id}"]` }] });
    expect((await scim('GET', '/scim/v2/Groups?filter=displayName%20eq%20%22sre-oncall%22')).json()).toMatchObject({
      totalResults: 1,
      Resources: [{ members: [] }],
    });
  });

  it('Entra ID: creates with its shapes, moves an approver out of the approver group, disables with "False", deletes', async () => {
    const created = await scim('POST', '/scim/v2/Users', {
      schemas: [USER, 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User'],
      externalId: '0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef',
      userName: 'Test_User_ab6490ee-1e48-479e-a20b-2d77186b5dd1',
      active: true,
      emails: [{ primary: true, type: 'work', value: 'Test_User_fd0ea19b@testuser.com' }],
      meta: { resourceType: 'User' },
      name: { formatted: 'givenName familyName', familyName: 'familyName', givenName: 'givenName' },
      roles: [],
    });
    expect(created.statusCode).toBe(201);
    const lead = created.json() as { id: string; userName: string };
    expect(lead.userName).toBe('test_user_ab6490ee-1e48-479e-a20b-2d77186b5dd1');
    expect((await scim('GET', '/scim/v2/Users?filter=externalId%20eq%20%220a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef%22')).json()).toMatchObject({ totalResults: 1 });

    const group = await scim('POST', '/scim/v2/Groups', {
      schemas: [GROUP, 'http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group'],
      externalId: '8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159',
      displayName: 'sre-leads',
      meta: { resourceType: 'Group' },
    });
    const groupId = (group.json() as { id: string }).id;
    await scim('PATCH', `/scim/v2/Groups/${groupId}`, {
      schemas: [PATCH],
      Operations: [{ op: 'Add', path: 'members', value: [{ $ref: null, value: lead.id }] }],
    });
    const membership = await scim(
      'GET',
      `/scim/v2/Groups?filter=id%20eq%20%22${groupId}%22%20and%20members%5Bvalue%20eq%20%22${lead.id}%22%5D&excludedAttributes=members`,
    );
    expect(membership.json()).toMatchObject({ totalResults: 1 });
    expect((membership.json() as { Resources: object[] }).Resources[0]).not.toHaveProperty('members');

    // Alice asks for something sre-leads must approve; the lead may review it...
    const user = await store().db.selectFrom('users').select('id').where('id', '=', lead.id).executeTakeFirstOrThrow();
    const token = (await issueApiToken(store().db, { userId: user.id, name: 't', scopes: ['read', 'approve'], expiresInMs: 3_600_000 }, new Date())).token;
    const asked = await api.call('alice', {
      method: 'POST',
      url: '/api/v1/requests',
      payload: { target: 'prod-db', entitlement: 'admin', duration: '1h', reason: 'fix the broken index', ticket: 'OPS-9' },
    });
    const requestId = (asked.json() as { request: { id: string } }).request.id;
    const inbox = async () => (await asPerson(token, 'GET', '/api/v1/requests?scope=review')).json() as { items: { id: string }[] };
    expect((await inbox()).items.map((r) => r.id)).toContain(requestId);

    // ...until Entra removes them from the group: at once, no sign-in needed.
    const removed = await scim('PATCH', `/scim/v2/Groups/${groupId}`, {
      schemas: [PATCH],
      Operations: [{ op: 'Remove', path: 'members', value: [{ $ref: null, value: lead.id }] }],
    });
    expect(removed.statusCode).toBe(204);
    expect((await inbox()).items.map((r) => r.id)).not.toContain(requestId);
    const review = await asPerson(token, 'POST', `/api/v1/requests/${requestId}/reviews`, { decision: 'approve' });
    // No longer an approver, so the request is not even visible to them.
    expect(review.statusCode).toBe(404);

    const disabled = await scim('PATCH', `/scim/v2/Users/${lead.id}`, { schemas: [PATCH], Operations: [{ op: 'Replace', path: 'active', value: 'False' }] });
    expect(disabled.json()).toMatchObject({ active: false });
    expect((await asPerson(token, 'GET', '/api/v1/grants')).statusCode).toBe(401);

    expect((await scim('DELETE', `/scim/v2/Users/${lead.id}`)).statusCode).toBe(204);
    expect((await scim('GET', `/scim/v2/Users/${lead.id}`)).json()).toMatchObject({ status: '404' });
    expect((await scim('DELETE', `/scim/v2/Groups/${groupId}`)).statusCode).toBe(204);
  });

  it('pages with startIndex and count, and bounds count', async () => {
    for (const n of [1, 2, 3]) await scim('POST', '/scim/v2/Users', { schemas: [USER], userName: `pager${n}@example.com` });
    const page = (await scim('GET', '/scim/v2/Users?startIndex=2&count=2')).json() as { totalResults: number; startIndex: number; itemsPerPage: number };
    expect(page.startIndex).toBe(2);
    expect(page.itemsPerPage).toBe(2);
    expect(page.totalResults).toBeGreaterThanOrEqual(3);
    expect((await scim('GET', '/scim/v2/Users?count=0')).json()).toMatchObject({ itemsPerPage: 0, Resources: [] });
    expect((await scim('GET', '/scim/v2/Users?count=100000')).statusCode).toBe(200);
    expect((await scim('GET', '/scim/v2/Users?count=ten')).json()).toMatchObject({ status: '400', scimType: 'invalidValue' });
  });
});
