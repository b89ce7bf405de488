import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import type { TargetConfig } from '../../config/types.js';
import { KubernetesConnector } from './kubernetes-connector.js';

/** Config-load checks of kubernetes targets: every problem with its lapse.yaml path and a fix. */
const connector = new KubernetesConnector({ warn: () => undefined });

function kubeconfig(overrides: { server?: string; insecure?: boolean; context?: string } = {}): string {
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [
      {
        name: 'c',
        cluster: { server: overrides.server ?? 'https://k8s.example.com:6443', ...(overrides.insecure ? { 'insecure-skip-tls-verify': true } : {}) },
      },
    ],
    users: [{ name: 'u', user: { token: 'not-a-real-token' } }],
    contexts: [{ name: 'ctx', context: { cluster: 'c', user: 'u' } }],
    'current-context': overrides.context ?? 'ctx',
  });
}

function target(
  settings: Record<string, unknown>,
  entitlements: Record<string, Record<string, unknown>> = { view: { kind: 'ClusterRole', name: 'view' } },
  name = 'k8s',
): TargetConfig {
  return {
    name,
    connector: 'kubernetes',
    description: '',
    settings,
    labels: {},
    entitlements: new Map(Object.entries(entitlements).map(([e, s]) => [e, { name: e, target: name, description: '', settings: s, labels: {} }])),
  };
}

describe('kubernetes settings', () => {
  it('accepts each credential source and the documented entitlement shapes', () => {
    const entitlements = {
      'payments-view': { kind: 'ClusterRole', name: 'view', namespace: 'payments' },
      'cluster-view': { kind: 'ClusterRole', name: 'view' },
      deploy: { kind: 'Role', name: 'deployer', namespace: 'payments', subject: 'group' },
      robot: { kind: 'ClusterRole', name: 'view', subject: 'serviceAccount', serviceAccountNamespace: 'lapse-grants' },
    };
    expect(connector.validateSettings(target({ kubeconfig: kubeconfig(), userPrefix: 'oidc:', accounts: { 'bob@example.com': 'bob' } }, entitlements))).toEqual(
      [],
    );
    expect(connector.validateSettings(target({ kubeconfigPath: '/etc/lapse/kubeconfig', context: 'prod' }))).toEqual([]);
    expect(connector.validateSettings(target({ inCluster: true, requesterServer: 'https://k8s.example.com' }))).toEqual([]);
  });

  it('wants exactly one credential source', () => {
    expect(connector.validateSettings(target({}))).toEqual([
      'targets.k8s.settings: give exactly one of kubeconfig (${file:/etc/lapse/kubeconfig}), kubeconfigPath (/etc/lapse/kubeconfig) or inCluster: true',
    ]);
    expect(connector.validateSettings(target({ kubeconfig: kubeconfig(), inCluster: true }))).toEqual([
      expect.stringMatching(/^targets\.k8s\.settings: give exactly one of kubeconfig .* \(found kubeconfig, inCluster\)$/),
    ]);
    expect(connector.validateSettings(target({ kubeconfigPath: 'relative/kubeconfig' }))).toEqual([
      'targets.k8s.settings.kubeconfigPath: must be an absolute file path, e.g. /etc/lapse/kubeconfig',
    ]);
  });

  it('reads the inline kubeconfig: YAML, context, https, and TLS verification', () => {
    expect(connector.validateSettings(target({ kubeconfig: 'clusters: [' }))).toEqual([
      expect.stringMatching(/^targets\.k8s\.settings\.kubeconfig: is not valid YAML/),
    ]);
    expect(connector.validateSettings(target({ kubeconfig: kubeconfig(), context: 'nope' }))).toEqual([
      'targets.k8s.settings.kubeconfig: has no context "nope"; use one of "ctx"',
    ]);
    expect(connector.validateSettings(target({ kubeconfig: kubeconfig({ server: 'http://k8s.example.com:8080' }) }))).toEqual([
      'targets.k8s.settings.kubeconfig: cluster "c" has server "http://k8s.example.com:8080"; Lapse talks to the API server over https only',
    ]);
    expect(connector.validateSettings(target({ kubeconfig: kubeconfig({ insecure: true }) }))).toEqual([
      expect.stringMatching(/^targets\.k8s\.settings\.kubeconfig: the cluster sets insecure-skip-tls-verify: true; .* settings\.tls\.insecureSkipVerify: true/),
    ]);
    expect(connector.validateSettings(target({ kubeconfig: kubeconfig({ insecure: true }), tls: { insecureSkipVerify: true } }))).toEqual([]);
    expect(connector.validateSettings(target({ kubeconfig: kubeconfig(), tls: { enabled: false } }))).toEqual([
      'targets.k8s.settings.tls.enabled: the Kubernetes API is always reached over https; remove it',
    ]);
  });

  it('refuses system: names, bad prefixes and unknown keys', () => {
    expect(
      connector.validateSettings(
        target({ kubeconfig: kubeconfig(), userPrefix: 'system:', accounts: { mallory: 'system:masters', eve: 'a\nb' }, token: 'x', timeoutMs: 5 }),
      ),
    ).toEqual([
      'targets.k8s.settings.token: unknown setting; known settings are kubeconfig, kubeconfigPath, context, inCluster, tls, timeoutMs, userPrefix, groupPrefix, accounts, requesterServer, requesterCa',
      'targets.k8s.settings.timeoutMs: must be a whole number from 100 to 120000 (milliseconds per API request)',
      'targets.k8s.settings.userPrefix: "system:" names belong to Kubernetes itself; use another prefix',
      'targets.k8s.settings.accounts.mallory: starts with "system:", which Kubernetes reserves for its own users and groups',
      'targets.k8s.settings.accounts.eve: contains a control character',
    ]);
  });

  it('checks entitlements: role kind and name, namespaces as DNS labels, subjects', () => {
    const problems = connector.validateSettings(
      target(
        { kubeconfig: kubeconfig() },
        {
          a: { kind: 'Role', name: 'deployer' },
          b: { kind: 'Group', name: 'x/y', namespace: 'Payments' },
          c: { kind: 'ClusterRole', name: 'view', subject: 'serviceAccount' },
          d: { kind: 'ClusterRole', name: 'view', subject: 'robot', serviceAccountNamespace: 'x' },
          'e-': { kind: 'ClusterRole', name: 'view' },
        },
      ),
    );
    expect(problems).toEqual([
      'targets.k8s.entitlements.a.settings.namespace: a Role lives in a namespace and can only be bound there; give its namespace',
      'targets.k8s.entitlements.b.settings.kind: must be Role or ClusterRole (the kind of the role to bind)',
      'targets.k8s.entitlements.b.settings.name: must be the name of the ClusterRole to bind (up to 253 characters, no "/" or "%"), e.g. view',
      'targets.k8s.entitlements.b.settings.namespace: must be a namespace name (lower-case letters, digits and "-", up to 63 characters)',
      'targets.k8s.entitlements.c.settings.serviceAccountNamespace: a ServiceAccount lives in a namespace; give one for this cluster-wide entitlement (e.g. lapse-grants)',
      "targets.k8s.entitlements.d.settings.subject: must be user (the requester's own Kubernetes user), group, or serviceAccount (an ephemeral ServiceAccount and token per grant)",
      'targets.k8s.entitlements.d.settings.serviceAccountNamespace: only for subject: serviceAccount; remove it',
      "targets.k8s.entitlements.e-: a kubernetes entitlement's name is written into labels and must end with a letter or digit; rename it",
    ]);
  });
});
