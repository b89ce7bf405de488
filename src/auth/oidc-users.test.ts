import { afterAll, beforeAll, expect, it } from 'vitest';
import { startEngine, type TestEngine } from '../../test/support/engine.js';
import { describeEachStore } from '../../test/support/stores.js';
import { upsertOidcUser } from './oidc-users.js';
import { createUser } from './principals.js';

describeEachStore('OIDC sign-in of people a directory manages', ({ store }) => {
  let t: TestEngine;
  beforeAll(async () => {
    t = await startEngine(store());
  });
  afterAll(async () => t?.stop());
  const scim = { directory: 'scim' as const, actor: 'scim:okta' };

  it('links the first sign-in to the SCIM person and keeps the directory groups over the claims', async () => {
    const id = await t.engine.directory.createPerson(scim, { userName: 'gina@example.com', externalId: 'x1', displayName: null, email: null, active: true });
    await t.engine.directory.createGroup(scim, { displayName: 'sre', externalId: null, members: [id] });
    const signIn = () =>
      upsertOidcUser(store().db, { issuer: 'https://idp.example', subject: 'sub-gina', username: 'gina@example.com', groups: ['everyone'] }, new Date());
    expect(await signIn()).toMatchObject({ id, created: false, groups: ['sre'] });
    expect(await signIn()).toMatchObject({ id, groups: ['sre'] });
    const row = await store().db.selectFrom('users').select(['external_id', 'groups']).where('id', '=', id).executeTakeFirstOrThrow();
    expect(row).toEqual({ external_id: 'https://idp.example#sub-gina', groups: ['sre'] });
  });

  it('never links a local account, and refuses a deprovisioned person', async () => {
    await createUser(store().db, { name: 'hank', groups: ['admins'] }, new Date());
    await expect(
      upsertOidcUser(store().db, { issuer: 'https://idp.example', subject: 'sub-hank', username: 'hank', groups: [] }, new Date()),
    ).rejects.toMatchObject({
      code: 'conflict',
    });
    const id = await t.engine.directory.createPerson(scim, { userName: 'ivy@example.com', externalId: null, displayName: null, email: null, active: false });
    await expect(
      upsertOidcUser(store().db, { issuer: 'https://idp.example', subject: 'sub-ivy', username: 'ivy@example.com', groups: [] }, new Date()),
    ).rejects.toMatchObject({
      code: 'unauthenticated',
    });
    expect((await store().db.selectFrom('users').select('disabled_at').where('id', '=', id).executeTakeFirstOrThrow()).disabled_at).not.toBeNull();
  });
});
