import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../config/index.js';
import { Engine } from '../../engine/index.js';
import { getGrant, getRequest } from '../../store/index.js';
import { waitFor } from '../../../test/support/engine.js';
import { openTestStore, type OpenedStore } from '../../../test/support/stores.js';
import { connectorRegistry } from '../types.js';
import { grantIdOf } from './iam-policy.js';
import { openFakeProject, PROJECT, type FakeProject } from './testing/fake-project.js';

/**
 * The whole path against the fake Cloud Resource Manager (PGlite, no external service): an
 * auto-approved request becomes a conditional binding whose backstop is moved to the grant's real
 * end once it is active, reconciliation removes a binding an operator made behind Lapse's back,
 * and release removes the grant's binding.
 */
describe('gcp-iam connector in the engine', () => {
  let p: FakeProject;
  let opened: OpenedStore;
  let engine: Engine;
  const alice = { id: 'alice@example.com', kind: 'user' as const, groups: ['sre'] };

  beforeAll(async () => {
    p = await openFakeProject();
    p.fake.addIdentity('user:alice@example.com');
    const yaml = `
version: 1
targets:
  gcp:
    connector: gcp-iam
    reconcile: { remediate: true }
    settings: { rootUrl: "${p.fake.rootUrl}", resource: ${PROJECT} }
    entitlements:
      viewer: { settings: { role: roles/compute.viewer } }
policies:
  - name: sre
    subjects: { groups: [sre] }
    entitlements: ["gcp/viewer"]
    autoApprove: true
scheduler: { pollInterval: 100ms, connectorTimeout: 10s }
`;
    opened = await openTestStore('pglite');
    engine = new Engine({ store: opened.store, config: parseConfig(yaml, 'gcp-engine.yaml', {}), connectors: connectorRegistry([p.connector]) });
    await engine.start();
  });
  afterAll(async () => {
    await engine?.stop();
    await opened?.close();
    await p?.close();
  });

  const bindingOf = (grantId: string) => (p.fake.policy(PROJECT).bindings ?? []).find((b) => grantIdOf(b) === grantId);

  it('provisions, settles the backstop, reconciles standing access and revokes on release', async () => {
    const { request } = await engine.submit({ principal: alice, target: 'gcp', entitlement: 'viewer', durationMs: 3_600_000, reason: 'engine test' });
    const grantId = (await getRequest(opened.store.db, request.id))!.grantId!;
    const active = await waitFor(
      () => getGrant(opened.store.db, grantId),
      (g) => g?.status === 'active',
    );
    const end = new Date(Math.floor(active!.expiresAt!.getTime() / 1000) * 1000).toISOString().replace('.000Z', 'Z');
    await waitFor(
      async () => bindingOf(grantId)?.condition?.expression,
      (expression) => expression === `request.time < timestamp("${end}")`,
    );
    const probe = p.grant({ principalId: 'alice@example.com' });
    expect(await p.hasAccess(probe)).toBe(true);

    p.fake.writeBehindBack(PROJECT, (bindings) => bindings.push({ role: 'roles/compute.viewer', members: ['user:mallory@example.com'] }));
    const [report] = await engine.reconcile('gcp', { actor: 'test' });
    expect(report).toMatchObject({ error: null, remediated: 1 });
    expect(report!.findings).toEqual([
      expect.objectContaining({ kind: 'standing', status: 'remediated', account: 'user:mallory@example.com', entitlement: 'viewer' }),
    ]);
    expect(p.fake.policy(PROJECT).bindings?.some((b) => b.members?.includes('user:mallory@example.com'))).toBe(false);
    expect(bindingOf(grantId)).toBeDefined();

    await engine.release({ grantId, by: alice, reason: 'done' });
    await waitFor(
      () => getGrant(opened.store.db, grantId),
      (g) => g?.status === 'revoked',
    );
    expect(bindingOf(grantId)).toBeUndefined();
    expect(await p.hasAccess(probe)).toBe(false);
  });
});
