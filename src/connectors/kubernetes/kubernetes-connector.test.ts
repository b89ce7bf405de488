import { KubeConfig, CoreV1Api } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newId } from '../../domain/ids.js';
import { connectorConformance } from '../testing/conformance.js';
import type { GrantSpec, ProvisionResult } from '../types.js';
import { KubernetesConnector } from './kubernetes-connector.js';
import { openScratchCluster, type ScratchCluster } from './testing/scratch-cluster.js';

/**
 * The connector through @kubernetes/client-node against the fake API server over HTTPS (a CA made
 * for the run), as Lapse's least-privilege identity from docs/connectors/kubernetes.md.
 */
let scratch: ScratchCluster;
const warnings: string[] = [];
const connector = new KubernetesConnector({ warn: (m) => warnings.push(m) });
const RBAC = 'rbac.authorization.k8s.io';

beforeAll(async () => {
  scratch = await openScratchCluster();
});
afterAll(async () => {
  await scratch?.close();
});

const ENTITLEMENTS = {
  'payments-view': { kind: 'ClusterRole', name: 'view', namespace: 'payments' },
  'cluster-view': { kind: 'ClusterRole', name: 'view' },
  'payments-deploy': { kind: 'Role', name: 'deployer', namespace: 'payments', subject: 'group' },
  'payments-robot': { kind: 'ClusterRole', name: 'view', namespace: 'payments', subject: 'serviceAccount', serviceAccountNamespace: 'lapse-grants' },
};

function grant(entitlement: keyof typeof ENTITLEMENTS, overrides: Partial<GrantSpec> = {}): GrantSpec {
  const target = overrides.target ?? scratch.target('prod-k8s', ENTITLEMENTS);
  return {
    grantId: newId('grant'),
    principalId: `alice-${Math.random().toString(36).slice(2, 8)}@example.com`,
    target,
    entitlement: target.entitlements.get(entitlement)!,
    durationMs: 3_600_000,
    notAfter: new Date(Date.now() + 3_600_000),
    parameters: {},
    ...overrides,
  };
}

/** Uses the handed-out kubeconfig with the SDK, as the requester would with kubectl. */
async function kubeconfigCanListPods(credentials: Readonly<Record<string, string>>): Promise<boolean> {
  const kc = new KubeConfig();
  kc.loadFromString(credentials.kubeconfig!);
  try {
    await kc.makeApiClient(CoreV1Api).listNamespacedPod({ namespace: credentials.namespace! });
    return true;
  } catch (error) {
    const code = (error as { code?: number }).code;
    if (code === 401 || code === 403) return false;
    throw error;
  }
}

async function hasAccess(g: GrantSpec, provisioned: ProvisionResult): Promise<boolean> {
  const s = g.entitlement.settings;
  const namespace = (s.namespace as string | undefined) ?? '';
  if (s.subject === 'serviceAccount') return kubeconfigCanListPods(provisioned.credentials!);
  if (s.subject === 'group') return scratch.canListPods(namespace, { user: 'someone', groups: [`oidc:${g.principalId}`] });
  return scratch.canListPods(namespace, { user: `oidc:${g.principalId}` });
}

for (const entitlement of ['payments-view', 'cluster-view', 'payments-deploy', 'payments-robot'] as const) {
  describe(`kubernetes ${entitlement}`, () => {
    connectorConformance({
      name: `kubernetes (${entitlement}, over TLS)`,
      connector: () => connector,
      grant: (overrides) => grant(entitlement, overrides),
      hasAccess,
      createUnmanaged: async (g) => {
        const principal = `outsider-${Math.random().toString(36).slice(2, 8)}`;
        const s = g.entitlement.settings as { kind: string; name: string; namespace?: string; subject?: string };
        // A subject of the entitlement's own kind, so the entry is reported under this entitlement (see access-list.ts).
        const subject =
          s.subject === 'serviceAccount'
            ? { kind: 'ServiceAccount', name: principal, namespace: 'lapse-grants' }
            : { kind: s.subject === 'group' ? 'Group' : 'User', apiGroup: RBAC, name: `oidc:${principal}` };
        const body = { metadata: { name: `hand-made-${principal}` }, roleRef: { apiGroup: RBAC, kind: s.kind, name: s.name }, subjects: [subject] };
        const path = s.namespace ? `/apis/${RBAC}/v1/namespaces/${s.namespace}/rolebindings` : `/apis/${RBAC}/v1/clusterrolebindings`;
        const { status } = await scratch.call('POST', path, { body });
        expect(status).toBe(201);
        return s.subject === 'serviceAccount' ? `system:serviceaccount:lapse-grants:${principal}` : principal;
      },
    });
  });
}

describe('kubernetes connector', () => {
  it('never switches TLS verification off unasked, so it never warned', () => {
    expect(warnings).toEqual([]);
  });
});
