import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments, stringify } from 'yaml';
import type { EntitlementConfig, TargetConfig } from '../../../config/types.js';
import { FakeCluster } from './fake-cluster.js';
import { startFakeApiServer, type FakeApiServer } from './fake-api-server.js';
import { makeTestCa, type TestCa } from './test-ca.js';

/**
 * A fake cluster over HTTPS (a CA made for the run) laid out like the examples in
 * docs/connectors/kubernetes.md: namespaces `payments` and `lapse-grants`, the ClusterRole `view`
 * and the Role `payments/deployer` (both may list pods), Lapse's identity (the ServiceAccount
 * lapse/lapse) holding exactly the least-privilege roles the page documents (read from the page
 * itself, so the page is what is tested), an `admin` user bound to cluster-admin, and Kubernetes' own bootstrap binding of
 * cluster-admin to `system:masters`.
 */
export interface ScratchCluster {
  readonly server: FakeApiServer;
  readonly ca: TestCa;
  /** Lapse's kubeconfig (inline YAML): the CA, the server, the `lapse` user's token. */
  readonly kubeconfig: string;
  readonly adminToken: string;
  /** A target with the given entitlements (settings as in lapse.yaml) and target settings merged over the defaults. */
  target(name: string, entitlements: Record<string, Record<string, unknown>>, settings?: Record<string, unknown>): TargetConfig;
  /** One API request as admin (optionally impersonating), or with another bearer token. */
  call(
    method: string,
    path: string,
    options?: { token?: string; user?: string; groups?: string[]; body?: unknown },
  ): Promise<{ status: number; json: unknown }>;
  /** Whether `who` (impersonated by admin, or a bearer token) may list pods in the namespace ('' = all namespaces). */
  canListPods(namespace: string, who: { user: string; groups?: string[] } | { token: string }): Promise<boolean>;
  close(): Promise<void>;
}

const DOCS = fileURLToPath(new URL('../../../../docs/connectors/kubernetes.md', import.meta.url));

/** The RBAC objects of the page's YAML block that defines the ClusterRole `lapse` (with its bindings and Role). */
export function documentedLapseRbac(): { kind: string; metadata: { name: string; namespace?: string } }[] {
  const blocks = [...readFileSync(DOCS, 'utf8').matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]!);
  for (const block of blocks) {
    const objects = parseAllDocuments(block).map((doc) => doc.toJS() as { kind: string; metadata: { name: string; namespace?: string } });
    if (objects.some((o) => o?.kind === 'ClusterRole' && o.metadata?.name === 'lapse')) return objects;
  }
  throw new Error(`no ClusterRole "lapse" in a yaml block of ${DOCS}`);
}

export async function openScratchCluster(): Promise<ScratchCluster> {
  const ca = makeTestCa();
  const cluster = new FakeCluster(['default', 'kube-system', 'lapse', 'payments', 'lapse-grants']);
  const lapseToken = cluster.addToken({ user: 'system:serviceaccount:lapse:lapse', groups: ['system:serviceaccounts', 'system:serviceaccounts:lapse'] });
  const adminToken = cluster.addToken({ user: 'admin', groups: [] });
  const podReader = [{ apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch'] }];
  const bootstrap = { 'kubernetes.io/bootstrapping': 'rbac-defaults' };
  const rbac = 'rbac.authorization.k8s.io';
  cluster.create('clusterroles', undefined, {
    metadata: { name: 'cluster-admin', labels: bootstrap },
    rules: [{ apiGroups: ['*'], resources: ['*'], verbs: ['*'] }],
  });
  cluster.create('clusterroles', undefined, { metadata: { name: 'view' }, rules: podReader });
  cluster.create('roles', 'payments', { metadata: { name: 'deployer' }, rules: podReader });
  const resources: Record<string, string> = {
    ClusterRole: 'clusterroles',
    ClusterRoleBinding: 'clusterrolebindings',
    Role: 'roles',
    RoleBinding: 'rolebindings',
  };
  for (const object of documentedLapseRbac()) cluster.create(resources[object.kind]!, object.metadata.namespace, object as unknown as Record<string, unknown>);
  const bind = (name: string, role: string, subjects: Record<string, unknown>[], labels?: Record<string, string>) =>
    cluster.create('clusterrolebindings', undefined, {
      metadata: { name, ...(labels ? { labels } : {}) },
      roleRef: { apiGroup: rbac, kind: 'ClusterRole', name: role },
      subjects,
    });
  bind('cluster-admin', 'cluster-admin', [{ kind: 'Group', apiGroup: rbac, name: 'system:masters' }], bootstrap);
  bind('test-admin', 'cluster-admin', [{ kind: 'User', apiGroup: rbac, name: 'admin' }], bootstrap);

  const server = await startFakeApiServer({ cluster, tls: { key: ca.serverKey, cert: ca.serverCert } });
  const kubeconfig = stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'fake', cluster: { server: server.url, 'certificate-authority-data': Buffer.from(ca.caPem).toString('base64') } }],
    users: [{ name: 'lapse', user: { token: lapseToken } }],
    contexts: [{ name: 'lapse@fake', context: { cluster: 'fake', user: 'lapse' } }],
    'current-context': 'lapse@fake',
  });

  const call: ScratchCluster['call'] = (method, path, options = {}) =>
    new Promise((resolve, reject) => {
      const headers: Record<string, string | string[]> = { authorization: `Bearer ${options.token ?? adminToken}`, accept: 'application/json' };
      if (options.user) headers['impersonate-user'] = options.user;
      if (options.groups?.length) headers['impersonate-group'] = options.groups;
      const payload = options.body === undefined ? undefined : JSON.stringify(options.body);
      // NB. Node sends a DELETE body without Content-Length or chunking unless told its length.
      if (payload !== undefined) Object.assign(headers, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(payload)) });
      const req = request(`${server.url}${path}`, { method, headers, ca: ca.caPem }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({ status: res.statusCode ?? 0, json: text ? (JSON.parse(text) as unknown) : null });
        });
      });
      req.on('error', reject);
      req.end(payload);
    });

  return {
    server,
    ca,
    kubeconfig,
    adminToken,
    target(name, entitlements, settings = {}) {
      const map = new Map<string, EntitlementConfig>(
        Object.entries(entitlements).map(([e, s]) => [e, { name: e, target: name, description: '', settings: s, labels: {} }]),
      );
      return {
        name,
        connector: 'kubernetes',
        description: '',
        settings: { kubeconfig, userPrefix: 'oidc:', groupPrefix: 'oidc:', timeoutMs: 5_000, ...settings },
        labels: {},
        entitlements: map,
      };
    },
    call,
    async canListPods(namespace, who) {
      const path = namespace ? `/api/v1/namespaces/${namespace}/pods` : '/api/v1/pods';
      const { status } = 'token' in who ? await call('GET', path, { token: who.token }) : await call('GET', path, { user: who.user, groups: who.groups ?? [] });
      if (status === 200) return true;
      if (status === 401 || status === 403) return false;
      throw new Error(`listing pods answered HTTP ${status}`);
    },
    close: () => server.close(),
  };
}
