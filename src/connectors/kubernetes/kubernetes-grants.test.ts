import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { newId } from '../../domain/ids.js';
import type { TargetConfig } from '../../config/types.js';
import type { GrantSpec } from '../types.js';
import { KubernetesConnector } from './kubernetes-connector.js';
import { makeTestCa } from './testing/test-ca.js';
import { openScratchCluster, type ScratchCluster } from './testing/scratch-cluster.js';

/** What a grant looks like in the cluster and what the requester gets, against the fake API server over TLS. */
let scratch: ScratchCluster;
let target: TargetConfig;
const connector = new KubernetesConnector({ warn: () => undefined });
const RBAC = 'rbac.authorization.k8s.io';
const signal = () => AbortSignal.timeout(20_000);

beforeAll(async () => {
  scratch = await openScratchCluster();
  target = scratch.target('prod-k8s', {
    'payments-view': { kind: 'ClusterRole', name: 'view', namespace: 'payments' },
    'cluster-view': { kind: 'ClusterRole', name: 'view' },
    robot: { kind: 'ClusterRole', name: 'view', namespace: 'payments', subject: 'serviceAccount', serviceAccountNamespace: 'lapse-grants' },
    edit: { kind: 'ClusterRole', name: 'edit', namespace: 'payments' },
  });
});
afterAll(async () => {
  await scratch?.close();
});

function grant(entitlement: string, overrides: Partial<GrantSpec> = {}): GrantSpec {
  const t = overrides.target ?? target;
  return {
    grantId: newId('grant'),
    principalId: 'alice@example.com',
    target: t,
    entitlement: t.entitlements.get(entitlement)!,
    durationMs: 3_600_000,
    notAfter: new Date(Date.now() + 3_600_000),
    parameters: {},
    ...overrides,
  };
}

const get = async (path: string) => (await scratch.call('GET', path)).json as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- test reads of API JSON.

describe('kubernetes grants', () => {
  it('makes one RoleBinding named after the grant, labelled and annotated, and a handle without secrets', async () => {
    const g = grant('payments-view');
    const { handle, credentials } = await connector.provision(g, signal());
    const name = `lapse-${g.grantId.slice(4)}`;
    expect(handle).toEqual({ kind: 'RoleBinding', namespace: 'payments', name });
    expect(credentials).toBeUndefined();
    const binding = await get(`/apis/${RBAC}/v1/namespaces/payments/rolebindings/${name}`);
    expect(binding.metadata.labels).toEqual({
      'app.kubernetes.io/managed-by': 'lapse',
      'lapse.dev/grant': g.grantId,
      'lapse.dev/target': 'prod-k8s',
      'lapse.dev/entitlement': 'payments-view',
    });
    expect(binding.metadata.annotations).toEqual({ 'lapse.dev/principal': 'alice@example.com', 'lapse.dev/expires-at': g.notAfter.toISOString() });
    expect(binding.roleRef).toEqual({ apiGroup: RBAC, kind: 'ClusterRole', name: 'view' });
    expect(binding.subjects).toEqual([{ kind: 'User', apiGroup: RBAC, name: 'oidc:alice@example.com' }]);
    expect(await scratch.canListPods('payments', { user: 'oidc:alice@example.com' })).toBe(true);
    expect(await scratch.canListPods('default', { user: 'oidc:alice@example.com' })).toBe(false);
    await connector.revoke(g, handle, signal());
    expect(await scratch.canListPods('payments', { user: 'oidc:alice@example.com' })).toBe(false);
  });

  it('maps principals through accounts, and refuses names Kubernetes keeps for itself', async () => {
    const entitlements = { v: { kind: 'ClusterRole', name: 'view' } };
    const mapped = scratch.target('prod-k8s', entitlements, { accounts: { 'alice@example.com': 'alice' } });
    const g = grant('v', { target: mapped });
    const { handle } = await connector.provision(g, signal());
    expect(await scratch.canListPods('', { user: 'alice' })).toBe(true);
    expect(await connector.listAccess(mapped, signal())).toContainEqual({
      account: `ClusterRoleBinding lapse-${g.grantId.slice(4)} User alice`,
      principalId: 'alice@example.com',
      entitlement: 'v',
      grantId: g.grantId,
    });
    await connector.revoke(g, handle, signal());
    const unprefixed = scratch.target('prod-k8s', entitlements, { userPrefix: '' });
    await expect(connector.provision(grant('v', { target: unprefixed, principalId: 'system:masters' }), signal())).rejects.toMatchObject({
      code: 'validation_failed',
      message: expect.stringContaining('starts with "system:"'),
    });
    await expect(connector.provision(grant('payments-view', { principalId: 'eve\n@example.com' }), signal())).rejects.toMatchObject({
      code: 'validation_failed',
    });
    expect(await connector.listAccess(unprefixed, signal())).not.toContainEqual(expect.objectContaining({ principalId: 'system:masters' }));
  });

  it('hands a ServiceAccount grant a kubeconfig whose token lasts until the grant ends and dies at revoke', async () => {
    const g = grant('robot', { notAfter: new Date(Date.now() + 2 * 3_600_000) });
    const { handle, credentials } = await connector.provision(g, signal());
    const name = `lapse-${g.grantId.slice(4)}`;
    expect(handle).toEqual({ kind: 'RoleBinding', namespace: 'payments', name, serviceAccount: { namespace: 'lapse-grants', name } });
    expect(JSON.stringify(handle)).not.toContain(credentials!.token);
    expect(credentials).toMatchObject({ server: scratch.server.url, namespace: 'payments', serviceAccount: `lapse-grants/${name}` });
    expect(Math.abs(Date.parse(credentials!.expiresAt!) - g.notAfter.getTime())).toBeLessThan(5_000);
    const kubeconfig = parse(credentials!.kubeconfig!) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- a parsed kubeconfig.
    expect(Buffer.from(kubeconfig.clusters[0].cluster['certificate-authority-data'], 'base64').toString()).toBe(scratch.ca.caPem);
    expect(kubeconfig.users[0].user.token).toBe(credentials!.token);
    expect(await scratch.canListPods('payments', { token: credentials!.token! })).toBe(true);
    const account = await get(`/api/v1/namespaces/lapse-grants/serviceaccounts/${name}`);
    expect(account.metadata.labels['lapse.dev/grant']).toBe(g.grantId);
    await connector.revoke(g, handle, signal());
    expect((await scratch.call('GET', '/api/v1/namespaces/payments/pods', { token: credentials!.token! })).status).toBe(401);
    expect((await scratch.call('GET', `/api/v1/namespaces/lapse-grants/serviceaccounts/${name}`)).status).toBe(404);
  });

  it('asks for at least the API minimum of 10 minutes, and reports what the server granted', async () => {
    const short = await connector.provision(grant('robot', { notAfter: new Date(Date.now() + 60_000) }), signal());
    expect(Date.parse(short.credentials!.expiresAt!) - Date.now()).toBeGreaterThan(590_000);
    const long = await connector.provision(grant('robot', { notAfter: new Date(Date.now() + 30 * 24 * 3_600_000) }), signal());
    expect(Date.parse(long.credentials!.expiresAt!) - Date.now()).toBeLessThanOrEqual(scratch.server.cluster.maxTokenSeconds * 1000);
  });

  it('a repeated provision issues a fresh token and ends the earlier one; extend issues another lasting to the new end', async () => {
    const g = grant('robot');
    const first = await connector.provision(g, signal());
    const second = await connector.provision(g, signal());
    expect(second.credentials!.token).not.toBe(first.credentials!.token);
    expect(await scratch.canListPods('payments', { token: first.credentials!.token! })).toBe(false);
    expect(await scratch.canListPods('payments', { token: second.credentials!.token! })).toBe(true);
    const later = { ...g, notAfter: new Date(Date.now() + 5 * 3_600_000) };
    const extended = await connector.extend(later, second.handle, signal());
    expect(extended?.credentials?.token).toEqual(expect.any(String));
    expect(Math.abs(Date.parse(extended!.credentials!.expiresAt!) - later.notAfter.getTime())).toBeLessThan(5_000);
    expect(await scratch.canListPods('payments', { token: extended!.credentials!.token! })).toBe(true);
    expect(await scratch.canListPods('payments', { token: second.credentials!.token! })).toBe(true);
    await connector.revoke(g, second.handle, signal());
    expect(await scratch.canListPods('payments', { token: extended!.credentials!.token! })).toBe(false);
  });

  it('extend moves the expiry annotation of a binding grant', async () => {
    const g = grant('cluster-view');
    const { handle } = await connector.provision(g, signal());
    const later = { ...g, notAfter: new Date(Date.now() + 9 * 3_600_000) };
    expect(await connector.extend(later, handle, signal())).toBeUndefined();
    const binding = await get(`/apis/${RBAC}/v1/clusterrolebindings/lapse-${g.grantId.slice(4)}`);
    expect(binding.metadata.annotations['lapse.dev/expires-at']).toBe(later.notAfter.toISOString());
    await connector.revoke(g, handle, signal());
  });

  it("will not take over or delete a binding of the grant's name that is not the grant's", async () => {
    const g = grant('payments-view');
    const name = `lapse-${g.grantId.slice(4)}`;
    await scratch.call('POST', `/apis/${RBAC}/v1/namespaces/payments/rolebindings`, {
      body: {
        metadata: { name },
        roleRef: { apiGroup: RBAC, kind: 'ClusterRole', name: 'view' },
        subjects: [{ kind: 'User', apiGroup: RBAC, name: 'oidc:squatter' }],
      },
    });
    await expect(connector.provision(g, signal())).rejects.toMatchObject({ code: 'conflict', message: expect.stringContaining('is not grant') });
    await expect(connector.revoke(g, null, signal())).rejects.toMatchObject({ code: 'conflict' });
    expect(await scratch.canListPods('payments', { user: 'oidc:squatter' })).toBe(true);
    await expect(connector.revoke(g, { kind: 'RoleBinding', namespace: 'payments', name: 'someone-elses' }, signal())).rejects.toMatchObject({
      message: expect.stringContaining("does not name the grant's own binding"),
    });
  });

  it("fails a role Lapse may not bind with the escalation check's reason and the fix", async () => {
    await expect(connector.provision(grant('edit'), signal())).rejects.toMatchObject({
      code: 'connector_failed',
      message: expect.stringContaining('attempting to grant RBAC permissions not currently held'),
      details: { hint: expect.stringContaining('bind verb') },
    });
  });

  it('lapse target check names every missing permission with the rule that grants it', async () => {
    await connector.checkTarget(
      scratch.target('ok', {
        v: { kind: 'ClusterRole', name: 'view', namespace: 'payments', subject: 'serviceAccount', serviceAccountNamespace: 'lapse-grants' },
      }),
      signal(),
    );
    const error = await connector
      .checkTarget(scratch.target('bad', { e: { kind: 'ClusterRole', name: 'edit', namespace: 'payments', subject: 'serviceAccount' } }), signal())
      .catch((e: unknown) => e);
    expect(error).toMatchObject({
      code: 'connector_failed',
      message:
        'kubernetes target bad: Lapse\'s identity may not bind clusterroles "edit" in namespace payments; get clusterroles "edit" cluster-wide; create serviceaccounts in namespace payments; get serviceaccounts in namespace payments; delete serviceaccounts in namespace payments; create serviceaccounts/token in namespace payments',
    });
    expect((error as { details: { hint: string } }).details.hint).toContain(
      '- apiGroups: ["rbac.authorization.k8s.io"]\n  resources: ["clusterroles"]\n  resourceNames: ["edit"]\n  verbs: ["bind", "get"]',
    );
    await scratch.call('DELETE', `/apis/${RBAC}/v1/clusterroles/view`);
    try {
      await expect(connector.checkTarget(scratch.target('gone', { v: { kind: 'ClusterRole', name: 'view' } }), signal())).rejects.toMatchObject({
        message: 'kubernetes target gone: ClusterRole view of entitlement v does not exist',
      });
    } finally {
      await scratch.call('POST', `/apis/${RBAC}/v1/clusterroles`, {
        body: { metadata: { name: 'view' }, rules: [{ apiGroups: [''], resources: ['pods'], verbs: ['get', 'list'] }] },
      });
    }
  });
});

describe('kubernetes credentials and TLS', () => {
  it('reads a kubeconfig from a path', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lapse-kubeconfig-'));
    try {
      writeFileSync(join(dir, 'kubeconfig'), scratch.kubeconfig);
      const t = scratch.target('by-path', { v: { kind: 'ClusterRole', name: 'view' } }, { kubeconfig: undefined, kubeconfigPath: join(dir, 'kubeconfig') });
      const settings = { ...t.settings };
      delete settings.kubeconfig;
      await connector.checkTarget({ ...t, settings }, signal());
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('says which CA file it cannot read', async () => {
    const kubeconfig = scratch.kubeconfig.replace(/certificate-authority-data: .*/, 'certificate-authority: /nonexistent/lapse-ca.crt');
    await expect(connector.checkTarget(scratch.target('no-ca', { v: { kind: 'ClusterRole', name: 'view' } }, { kubeconfig }), signal())).rejects.toMatchObject({
      code: 'config_invalid',
      message: expect.stringContaining('cannot read the cluster CA'),
    });
  });

  it('refuses a server whose certificate the CA does not sign, unless told to skip verification, and then warns', async () => {
    const other = makeTestCa();
    const t = scratch.target('wrong-ca', { v: { kind: 'ClusterRole', name: 'view' } }, { tls: { ca: other.caPem } });
    await expect(connector.checkTarget(t, signal())).rejects.toMatchObject({
      code: 'connector_failed',
      message: expect.stringMatching(/certificate|self.signed|issuer/i),
    });
    const warnings: string[] = [];
    const loud = new KubernetesConnector({ warn: (m) => warnings.push(m) });
    await loud.checkTarget(
      scratch.target('skip', { v: { kind: 'ClusterRole', name: 'view' } }, { tls: { ca: other.caPem, insecureSkipVerify: true } }),
      signal(),
    );
    expect(warnings).toEqual([expect.stringContaining('target skip connects with tls.insecureSkipVerify: true')]);
  });
});
