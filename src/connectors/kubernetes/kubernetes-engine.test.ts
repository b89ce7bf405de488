import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../config/index.js';
import { Engine } from '../../engine/index.js';
import { getGrant, getRequest } from '../../store/index.js';
import { waitFor } from '../../../test/support/engine.js';
import { openTestStore, type OpenedStore } from '../../../test/support/stores.js';
import { connectorRegistry } from '../types.js';
import { KubernetesConnector } from './kubernetes-connector.js';
import { openScratchCluster, type ScratchCluster } from './testing/scratch-cluster.js';

/**
 * The whole path against the fake API server (over TLS, Lapse as its documented least-privilege
 * identity, the kubeconfig as a `${env:…}` reference): auto-approved requests become a RoleBinding
 * for alice's OIDC user and a ServiceAccount whose kubeconfig she fetches once; reconciliation
 * removes a binding an operator made behind Lapse's back; release takes both grants away.
 */
describe('kubernetes connector in the engine', () => {
  let scratch: ScratchCluster;
  let opened: OpenedStore;
  let engine: Engine;
  const alice = { id: 'alice@example.com', kind: 'user' as const, groups: ['sre'] };
  const RBAC = 'rbac.authorization.k8s.io';

  beforeAll(async () => {
    scratch = await openScratchCluster();
    const yaml = `
version: 1
targets:
  prod-k8s:
    connector: kubernetes
    reconcile: { remediate: true }
    settings: { kubeconfig: "\${env:PROD_K8S_KUBECONFIG}", userPrefix: "oidc:" }
    entitlements:
      payments-view: { settings: { kind: ClusterRole, name: view, namespace: payments } }
      payments-robot: { settings: { kind: ClusterRole, name: view, namespace: payments, subject: serviceAccount, serviceAccountNamespace: lapse-grants } }
policies:
  - name: sre
    subjects: { groups: [sre] }
    entitlements: ["prod-k8s/*"]
    autoApprove: true
scheduler: { pollInterval: 100ms, connectorTimeout: 10s }
`;
    opened = await openTestStore('pglite');
    engine = new Engine({
      store: opened.store,
      config: parseConfig(yaml, 'kubernetes-engine.yaml', { PROD_K8S_KUBECONFIG: scratch.kubeconfig }),
      connectors: connectorRegistry([new KubernetesConnector()]),
    });
    await engine.start();
  });
  afterAll(async () => {
    await engine?.stop();
    await opened?.close();
    await scratch?.close();
  });

  async function activeGrant(entitlement: string): Promise<string> {
    const { request } = await engine.submit({ principal: alice, target: 'prod-k8s', entitlement, durationMs: 3_600_000, reason: 'engine test' });
    const grantId = (await getRequest(opened.store.db, request.id))!.grantId!;
    await waitFor(
      () => getGrant(opened.store.db, grantId),
      (g) => g?.status === 'active',
    );
    return grantId;
  }

  it('grants, hands out the ServiceAccount kubeconfig once, reconciles standing access and revokes on release', async () => {
    const viewing = await activeGrant('payments-view');
    expect(await scratch.canListPods('payments', { user: 'oidc:alice@example.com' })).toBe(true);
    const robot = await activeGrant('payments-robot');
    const { token, kubeconfig } = await engine.fetchCredentials({ grantId: robot, by: alice });
    expect(kubeconfig).toContain(scratch.server.url);
    expect(await scratch.canListPods('payments', { token: token! })).toBe(true);

    // An operator, by hand, with no grant in Lapse.
    const body = {
      metadata: { name: 'mallory-view' },
      roleRef: { apiGroup: RBAC, kind: 'ClusterRole', name: 'view' },
      subjects: [{ kind: 'User', apiGroup: RBAC, name: 'oidc:mallory' }],
    };
    expect((await scratch.call('POST', `/apis/${RBAC}/v1/namespaces/payments/rolebindings`, { body })).status).toBe(201);
    const [report] = await engine.reconcile('prod-k8s', { actor: 'test' });
    expect(report).toMatchObject({ error: null, remediated: 1 });
    expect(report!.findings).toEqual([
      expect.objectContaining({ kind: 'standing', status: 'remediated', account: 'RoleBinding payments/mallory-view User oidc:mallory' }),
    ]);
    expect(await scratch.canListPods('payments', { user: 'oidc:mallory' })).toBe(false);
    expect(await scratch.canListPods('payments', { user: 'oidc:alice@example.com' })).toBe(true);

    for (const grantId of [viewing, robot]) {
      await engine.release({ grantId, by: alice, reason: 'done' });
      await waitFor(
        () => getGrant(opened.store.db, grantId),
        (g) => g?.status === 'revoked',
      );
    }
    expect(await scratch.canListPods('payments', { user: 'oidc:alice@example.com' })).toBe(false);
    expect((await scratch.call('GET', '/api/v1/namespaces/payments/pods', { token: token! })).status).toBe(401);
  });
});
