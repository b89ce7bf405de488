import { afterEach, beforeEach, expect, it } from 'vitest';
import { alice, bob, root, startEngine, waitFor, type TestEngine } from '../../test/support/engine.js';
import { describeEachStore } from '../../test/support/stores.js';
import { isLapseError } from '../domain/errors.js';
import { createSealer } from '../secrets/index.js';
import { getGrant, getRequest } from '../store/index.js';

describeEachStore('credentials handed out once', ({ store }) => {
  let t: TestEngine;
  beforeEach(async () => {
    t = await startEngine(store());
  });
  afterEach(async () => {
    await t.stop();
  });

  const activeGrant = async (entitlement = 'ephemeral') => {
    const { request } = await t.engine.submit({ principal: alice, target: 'prod-db', entitlement, durationMs: 60_000, reason: 'INC-2' });
    const grantId = (await getRequest(store().db, request.id))!.grantId!;
    await waitFor(
      () => getGrant(store().db, grantId),
      (g) => g?.status === 'active',
    );
    return grantId;
  };
  const sealedRows = () => store().db.selectFrom('grant_credentials').selectAll().execute();

  it('seals them at rest, gives them to the holder once, then erases them', async () => {
    const grantId = await activeGrant();
    const [row] = await sealedRows();
    expect(row!.grant_id).toBe(grantId);
    expect(row!.sealed).not.toContain('noop_');

    await expect(t.engine.fetchCredentials({ grantId, by: bob })).rejects.toSatisfy((e) => isLapseError(e, 'not_found'));
    await expect(t.engine.fetchCredentials({ grantId, by: root })).rejects.toSatisfy((e) => isLapseError(e, 'not_found'));
    const credentials = await t.engine.fetchCredentials({ grantId, by: alice });
    expect(credentials.username).toBe(`noop_${grantId}`);
    expect(credentials.password!.length).toBeGreaterThanOrEqual(24);
    await expect(t.engine.fetchCredentials({ grantId, by: alice })).rejects.toSatisfy((e) => isLapseError(e, 'gone'));
    expect(await sealedRows()).toEqual([]);

    const audit = await store().db.selectFrom('audit_events').select('payload').orderBy('seq').execute();
    const text = audit.map((r) => r.payload).join('\n');
    expect(text).toContain('grant.credentials_fetched');
    expect(text).not.toContain(credentials.password);
  });

  it('erases credentials nobody fetched when the grant ends', async () => {
    const grantId = await activeGrant();
    expect(await sealedRows()).toHaveLength(1);
    await t.engine.release({ grantId, by: alice, reason: 'done' });
    expect(await sealedRows()).toEqual([]);
    await expect(t.engine.fetchCredentials({ grantId, by: alice })).rejects.toSatisfy((e) => isLapseError(e, 'invalid_transition'));
  });

  it('issues none for entitlements without them', async () => {
    const grantId = await activeGrant('readonly');
    await expect(t.engine.fetchCredentials({ grantId, by: alice })).rejects.toSatisfy((e) => isLapseError(e, 'gone'));
  });

  it('refuses request parameters the connector does not take, storing nothing', async () => {
    const before = await store().db.selectFrom('requests').select('id').execute();
    await expect(
      t.engine.submit({ principal: alice, target: 'prod-db', entitlement: 'readonly', reason: 'x', parameters: { sshPublicKey: 'ssh-ed25519 AAAA' } }),
    ).rejects.toSatisfy((e) => isLapseError(e, 'validation_failed') && /takes no parameters/.test((e as Error).message));
    await expect(
      t.engine.submit({ principal: alice, target: 'prod-db', entitlement: 'readonly', reason: 'x', parameters: { 'bad name': 'v' } }),
    ).rejects.toSatisfy((e) => isLapseError(e, 'validation_failed'));
    expect(await store().db.selectFrom('requests').select('id').execute()).toEqual(before);
  });
});

it('a sealed value opens only with its key and in its own context', () => {
  const key = Buffer.alloc(32, 7);
  const sealer = createSealer(key);
  const sealed = sealer.seal('s3cret', 'grant-credentials:grt_1');
  expect(sealer.open(sealed, 'grant-credentials:grt_1')).toBe('s3cret');
  expect(() => sealer.open(sealed, 'grant-credentials:grt_2')).toThrow(/integrity/);
  const tampered = sealed.slice(0, -2) + (sealed.endsWith('A') ? 'BB' : 'AA');
  expect(() => sealer.open(tampered, 'grant-credentials:grt_1')).toThrow(/integrity/);
  expect(() => createSealer(Buffer.alloc(32, 8)).open(sealed, 'grant-credentials:grt_1')).toThrow(/not configured/);
  const rotated = createSealer(Buffer.alloc(32, 8), [key]);
  expect(rotated.open(sealed, 'grant-credentials:grt_1')).toBe('s3cret');
});
