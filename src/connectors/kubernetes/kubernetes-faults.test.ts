import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { newId } from '../../domain/ids.js';
import type { TargetConfig } from '../../config/types.js';
import type { GrantSpec } from '../types.js';
import { KubernetesConnector } from './kubernetes-connector.js';
import { openScratchCluster, type ScratchCluster } from './testing/scratch-cluster.js';

/**
 * Revocation converges whatever the API server does meanwhile: throttling, 5xx, conflicting
 * writers, stale lists, finalizers; and reconciliation finds and removes access made behind
 * Lapse's back, one subject at a time.
 */
let scratch: ScratchCluster;
let target: TargetConfig;
const connector = new KubernetesConnector({ warn: () => undefined });
const RBAC = 'rbac.authorization.k8s.io';
const signal = () => AbortSignal.timeout(20_000);
const user = (name: string) => ({ kind: 'User', apiGroup: RBAC, name });

beforeAll(async () => {
  scratch = await openScratchCluster();
  target = scratch.target('prod-k8s', {
    'payments-view': { kind: 'ClusterRole', name: 'view', namespace: 'payments' },
    robot: { kind: 'ClusterRole', name: 'view', namespace: 'payments', subject: 'serviceAccount', serviceAccountNamespace: 'lapse-grants' },
  });
});
afterEach(() => {
  Object.assign(scratch.server.faults, { latencyMs: 0 });
  scratch.server.faults.throttleEvery(0);
});
afterAll(async () => {
  await scratch?.close();
});

function grant(entitlement = 'payments-view', principalId = `p${Math.random().toString(36).slice(2, 8)}`): GrantSpec {
  return {
    grantId: newId('grant'),
    principalId,
    target,
    entitlement: target.entitlements.get(entitlement)!,
    durationMs: 3_600_000,
    notAfter: new Date(Date.now() + 3_600_000),
    parameters: {},
  };
}
const canList = (g: GrantSpec) => scratch.canListPods('payments', { user: `oidc:${g.principalId}` });

describe('kubernetes revocation under faults', () => {
  it('waits out 429 Retry-After and retries 5xx, and the access still ends', async () => {
    const g = grant();
    const { handle } = await connector.provision(g, signal());
    const { stats, faults } = scratch.server;
    const before = { throttled: stats.throttled, failed: stats.failed };
    faults.throttleNext(1, 1);
    const started = Date.now();
    const result = await connector.revoke(g, handle, signal());
    expect(Date.now() - started).toBeGreaterThanOrEqual(950);
    faults.failNext(2, 503);
    await connector.revoke(g, handle, signal());
    expect(result).toBeUndefined();
    expect(await canList(g)).toBe(false);
    expect({ throttled: stats.throttled - before.throttled, failed: stats.failed - before.failed }).toEqual({ throttled: 1, failed: 2 });
  });

  it('gives up with connector_failed after repeated 5xx, and a later revoke finishes the job', async () => {
    const g = grant();
    const { handle } = await connector.provision(g, signal());
    scratch.server.faults.failNext(6, 500);
    await expect(connector.revoke(g, handle, signal())).rejects.toMatchObject({
      code: 'connector_failed',
      message: expect.stringContaining('answered HTTP 500 InternalError'),
    });
    expect(await canList(g)).toBe(true);
    await connector.revoke(g, handle, signal());
    expect(await canList(g)).toBe(false);
  });

  it('honours the deadline while the server is slow, and does not start after it', async () => {
    const g = grant();
    const { handle } = await connector.provision(g, signal());
    scratch.server.faults.latencyMs = 2_000;
    const started = Date.now();
    await expect(connector.revoke(g, handle, AbortSignal.timeout(300))).rejects.toMatchObject({ code: 'connector_timeout' });
    expect(Date.now() - started).toBeLessThan(1_500);
    scratch.server.faults.latencyMs = 0;
    await expect(connector.provision(grant(), AbortSignal.abort())).rejects.toMatchObject({ code: 'connector_timeout' });
    await connector.revoke(g, handle, signal());
  });

  it('reports propagation pending while finalizers hold the binding and the ServiceAccount, then confirms', async () => {
    const g = grant('robot');
    const { handle, credentials } = await connector.provision(g, signal());
    const name = `lapse-${g.grantId.slice(4)}`;
    const paths = [`/apis/${RBAC}/v1/namespaces/payments/rolebindings/${name}`, `/api/v1/namespaces/lapse-grants/serviceaccounts/${name}`];
    for (const path of paths) {
      const current = (await scratch.call('GET', path)).json as { metadata: Record<string, unknown> };
      expect(
        (await scratch.call('PUT', path, { body: { ...current, metadata: { ...current.metadata, finalizers: ['example.com/audit-hold'] } } })).status,
      ).toBe(200);
    }
    const first = await connector.revoke(g, handle, signal());
    expect(first).toEqual({
      propagationPending: expect.stringMatching(
        /^ServiceAccount lapse-grants\/lapse-\w+ is marked for deletion but still exists \(finalizers: example.com\/audit-hold\).*; RoleBinding payments\/lapse-\w+ is marked/,
      ),
      recheckInMs: 2_000,
    });
    expect(await scratch.canListPods('payments', { token: credentials!.token! })).toBe(true);
    expect(await connector.revoke(g, handle, signal())).toMatchObject({ propagationPending: expect.any(String) });
    for (const path of paths) {
      const held = (await scratch.call('GET', path)).json as { metadata: Record<string, unknown> };
      await scratch.call('PUT', path, { body: { ...held, metadata: { ...held.metadata, finalizers: [] } } });
    }
    expect(await connector.revoke(g, handle, signal())).toBeUndefined();
    expect(await scratch.canListPods('payments', { token: credentials!.token! })).toBe(false);
  });

  it('revokes while lists are stale: revoke reads objects, not lists, and reconciliation of the stale entry is harmless', async () => {
    const g = grant();
    const { handle } = await connector.provision(g, signal());
    scratch.server.faults.staleListsNext(4);
    expect(await connector.revoke(g, handle, signal())).toBeUndefined();
    expect(await canList(g)).toBe(false);
    const stale = (await connector.listAccess(target, signal())).find((a) => a.grantId === g.grantId);
    expect(stale).toBeDefined();
    await connector.removeAccess(target, stale!, signal());
    expect((await connector.listAccess(target, signal())).some((a) => a.grantId === g.grantId)).toBe(false);
  });

  it('updates a binding through conflicting writers: extend and removing one subject re-read and retry', async () => {
    const g = grant();
    const { handle } = await connector.provision(g, signal());
    scratch.server.faults.conflictNext(2);
    await connector.extend({ ...g, notAfter: new Date(Date.now() + 7_200_000) }, handle, signal());
    expect(scratch.server.stats.conflicts).toBeGreaterThanOrEqual(2);
    await connector.revoke(g, handle, signal());
  });
});

describe('kubernetes reconciliation', () => {
  it('lists bindings of the same role made behind its back, one entry per subject, and removes just that subject', async () => {
    const body = {
      metadata: { name: 'ops-team' },
      roleRef: { apiGroup: RBAC, kind: 'ClusterRole', name: 'view' },
      subjects: [user('oidc:carol'), user('oidc:dave')],
    };
    expect((await scratch.call('POST', `/apis/${RBAC}/v1/namespaces/payments/rolebindings`, { body })).status).toBe(201);
    const wide = {
      metadata: { name: 'everyone-views' },
      roleRef: { apiGroup: RBAC, kind: 'ClusterRole', name: 'view' },
      subjects: [{ kind: 'Group', apiGroup: RBAC, name: 'oidc:contractors' }],
    };
    expect((await scratch.call('POST', `/apis/${RBAC}/v1/clusterrolebindings`, { body: wide })).status).toBe(201);
    const listed = await connector.listAccess(target, signal());
    const unmanaged = listed.filter((a) => a.grantId === null);
    expect(unmanaged).toEqual(
      expect.arrayContaining([
        { account: 'RoleBinding payments/ops-team User oidc:carol', principalId: 'carol', entitlement: 'payments-view', grantId: null },
        { account: 'RoleBinding payments/ops-team User oidc:dave', principalId: 'dave', entitlement: 'payments-view', grantId: null },
        { account: 'ClusterRoleBinding everyone-views Group oidc:contractors', principalId: 'contractors', entitlement: 'payments-view', grantId: null },
      ]),
    );
    // Kubernetes' own: the bootstrap cluster-admin bindings (system:masters, the test admin) are not reported.
    expect(listed.some((a) => a.account.includes('cluster-admin') || a.account.includes('system:'))).toBe(false);

    scratch.server.faults.conflictNext(1);
    await connector.removeAccess(
      target,
      unmanaged.find((a) => a.principalId === 'carol')!,
      signal(),
    );
    expect(await scratch.canListPods('payments', { user: 'oidc:carol' })).toBe(false);
    expect(await scratch.canListPods('payments', { user: 'oidc:dave' })).toBe(true);
    await connector.removeAccess(
      target,
      unmanaged.find((a) => a.principalId === 'dave')!,
      signal(),
    );
    expect((await scratch.call('GET', `/apis/${RBAC}/v1/namespaces/payments/rolebindings/ops-team`)).status).toBe(404);
    await connector.removeAccess(
      target,
      unmanaged.find((a) => a.principalId === 'contractors')!,
      signal(),
    );
    expect(await scratch.canListPods('payments', { user: 'x', groups: ['oidc:contractors'] })).toBe(false);
  });

  it("leaves other targets' bindings alone and refuses to remove what it would not report", async () => {
    const other = scratch.target('staging-k8s', { 'payments-view': { kind: 'ClusterRole', name: 'view', namespace: 'payments' } });
    const theirs = { ...grant(), target: other, entitlement: other.entitlements.get('payments-view')! };
    const { handle } = await connector.provision(theirs, signal());
    expect((await connector.listAccess(target, signal())).some((a) => a.grantId === theirs.grantId)).toBe(false);
    const name = `lapse-${theirs.grantId.slice(4)}`;
    await expect(
      connector.removeAccess(
        target,
        {
          account: `RoleBinding payments/${name} User oidc:${theirs.principalId}`,
          principalId: theirs.principalId,
          entitlement: 'payments-view',
          grantId: null,
        },
        signal(),
      ),
    ).rejects.toMatchObject({ code: 'validation_failed' });
    await expect(
      connector.removeAccess(
        target,
        { account: 'ClusterRoleBinding cluster-admin Group system:masters', principalId: 'x', entitlement: 'payments-view', grantId: null },
        signal(),
      ),
    ).rejects.toMatchObject({ code: 'validation_failed' });
    await expect(
      connector.removeAccess(target, { account: 'nonsense', principalId: 'x', entitlement: 'payments-view', grantId: null }, signal()),
    ).rejects.toMatchObject({
      code: 'validation_failed',
    });
    expect(await scratch.canListPods('payments', { user: `oidc:${theirs.principalId}` })).toBe(true);
    await connector.revoke(theirs, handle, signal());
  });
});
