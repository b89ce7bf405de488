import type { TargetConfig } from '../../config/types.js';
import { LapseError } from '../../domain/errors.js';
import { RBAC_GROUP } from './bindings.js';
import type { KubeApi } from './kube-api.js';
import { parseEntitlement, type KubeEntitlement } from './settings.js';

/**
 * `lapse target check`: asks the API server, with one SelfSubjectAccessReview per permission,
 * whether Lapse's identity may do everything its entitlements need, and names each missing one
 * with the ClusterRole rule that grants it; then checks that every role to bind exists.
 */
export interface Permission {
  readonly verb: string;
  readonly group: string;
  readonly resource: string;
  readonly subresource?: string;
  /** '' = cluster-wide. */
  readonly namespace: string;
  readonly name?: string;
}

/** What Lapse needs for one entitlement: manage its bindings, bind its role (RBAC's escalation check), and its ServiceAccounts. */
export function permissionsFor(entitlement: KubeEntitlement): Permission[] {
  const namespace = entitlement.namespace ?? '';
  const bindings = entitlement.namespace === undefined ? 'clusterrolebindings' : 'rolebindings';
  const roles = entitlement.roleRef.kind === 'Role' ? 'roles' : 'clusterroles';
  const needed: Permission[] = ['create', 'get', 'list', 'update', 'delete'].map((verb) => ({ verb, group: RBAC_GROUP, resource: bindings, namespace }));
  needed.push({ verb: 'bind', group: RBAC_GROUP, resource: roles, namespace, name: entitlement.roleRef.name });
  needed.push({
    verb: 'get',
    group: RBAC_GROUP,
    resource: roles,
    namespace: entitlement.roleRef.kind === 'Role' ? namespace : '',
    name: entitlement.roleRef.name,
  });
  // Reconciliation looks for cluster-wide bindings of a ClusterRole granted in a namespace too.
  if (entitlement.namespace !== undefined && entitlement.roleRef.kind === 'ClusterRole')
    needed.push({ verb: 'list', group: RBAC_GROUP, resource: 'clusterrolebindings', namespace: '' });
  if (entitlement.subject === 'serviceAccount') {
    const sa = entitlement.serviceAccountNamespace!;
    for (const verb of ['create', 'get', 'delete']) needed.push({ verb, group: '', resource: 'serviceaccounts', namespace: sa });
    needed.push({ verb: 'create', group: '', resource: 'serviceaccounts', subresource: 'token', namespace: sa });
  }
  return needed;
}

const describe = (p: Permission) =>
  `${p.verb} ${p.resource}${p.subresource ? `/${p.subresource}` : ''}${p.name ? ` "${p.name}"` : ''} ${p.namespace ? `in namespace ${p.namespace}` : 'cluster-wide'}`;

/** ClusterRole rules (YAML) granting the missing permissions, one rule per resource and name. */
export function rulesYaml(missing: readonly Permission[]): string {
  const rules = new Map<string, { group: string; resource: string; name?: string; verbs: Set<string> }>();
  for (const p of missing) {
    const resource = p.subresource ? `${p.resource}/${p.subresource}` : p.resource;
    const key = `${p.group}|${resource}|${p.name ?? ''}`;
    const rule = rules.get(key) ?? { group: p.group, resource, ...(p.name ? { name: p.name } : {}), verbs: new Set<string>() };
    rule.verbs.add(p.verb);
    rules.set(key, rule);
  }
  return [...rules.values()]
    .map(
      (r) =>
        `- apiGroups: ["${r.group}"]\n  resources: ["${r.resource}"]\n${r.name ? `  resourceNames: ["${r.name}"]\n` : ''}  verbs: [${[...r.verbs]
          .sort()
          .map((v) => `"${v}"`)
          .join(', ')}]`,
    )
    .join('\n');
}

export async function checkTargetAccess(api: KubeApi, target: TargetConfig, signal: AbortSignal): Promise<void> {
  const entitlements = [...target.entitlements.values()].map((e) => ({ name: e.name, ...parseEntitlement(e) }));
  const unique = new Map<string, Permission>();
  for (const entitlement of entitlements) for (const p of permissionsFor(entitlement)) unique.set(JSON.stringify(p), p);
  const checks = [...unique.values()];
  const allowed = await inBatches(checks, 8, (p) => reviewed(api, p, signal));
  const missing = checks.filter((_, i) => !allowed[i]);
  if (missing.length > 0) {
    throw new LapseError('connector_failed', `kubernetes target ${target.name}: Lapse's identity may not ${missing.map(describe).join('; ')}`, {
      where: `targets.${target.name}`,
      hint: `add these rules to the ClusterRole bound to Lapse's identity (docs/connectors/kubernetes.md shows the whole role):\n${rulesYaml(missing)}`,
    });
  }
  for (const entitlement of entitlements) {
    const { kind, name } = entitlement.roleRef;
    const found = await api.call(
      `get ${kind} ${name}`,
      signal,
      (o) =>
        kind === 'Role' ? api.clients.rbac.readNamespacedRole({ name, namespace: entitlement.namespace! }, o) : api.clients.rbac.readClusterRole({ name }, o),
      [404],
    );
    if (!found) {
      throw new LapseError(
        'connector_failed',
        `kubernetes target ${target.name}: ${kind} ${kind === 'Role' ? `${entitlement.namespace}/` : ''}${name} of entitlement ${entitlement.name} does not exist`,
        {
          where: `targets.${target.name}.entitlements.${entitlement.name}.settings.name`,
          hint: `create the ${kind} (kubectl get ${kind === 'Role' ? `roles -n ${entitlement.namespace}` : 'clusterroles'} lists what exists) or fix the name`,
        },
      );
    }
  }
}

async function reviewed(api: KubeApi, p: Permission, signal: AbortSignal): Promise<boolean> {
  const answer = await api.call(`create SelfSubjectAccessReview (${describe(p)})`, signal, (o) =>
    api.clients.authorization.createSelfSubjectAccessReview(
      {
        body: {
          apiVersion: 'authorization.k8s.io/v1',
          kind: 'SelfSubjectAccessReview',
          spec: {
            resourceAttributes: {
              verb: p.verb,
              group: p.group,
              resource: p.resource,
              ...(p.subresource ? { subresource: p.subresource } : {}),
              ...(p.namespace ? { namespace: p.namespace } : {}),
              ...(p.name ? { name: p.name } : {}),
            },
          },
        },
      },
      o,
    ),
  );
  return answer?.status?.allowed === true;
}

async function inBatches<T, R>(items: readonly T[], size: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = [];
  for (let i = 0; i < items.length; i += size) results.push(...(await Promise.all(items.slice(i, i + size).map(work))));
  return results;
}
