import type { V1RoleBinding } from '@kubernetes/client-node';
import { bindingKind, describeBinding, type BindingRef } from './bindings.js';
import type { KubeApi } from './kube-api.js';

/**
 * RoleBindings and ClusterRoleBindings through one set of calls: a binding with a namespace is a
 * RoleBinding, without one a ClusterRoleBinding (the two types have the same shape).
 */
const PAGE = 500;

export function readBinding(api: KubeApi, ref: BindingRef, signal: AbortSignal): Promise<V1RoleBinding | null> {
  const { rbac } = api.clients;
  return api.call(
    `get ${describeBinding(ref)}`,
    signal,
    (o) =>
      ref.namespace === undefined
        ? rbac.readClusterRoleBinding({ name: ref.name }, o)
        : rbac.readNamespacedRoleBinding({ name: ref.name, namespace: ref.namespace }, o),
    [404],
  );
}

/** Creates the binding; null when one of that name already exists (409 AlreadyExists). */
export function createBinding(api: KubeApi, body: V1RoleBinding, signal: AbortSignal): Promise<V1RoleBinding | null> {
  const ref = { namespace: body.metadata?.namespace, name: body.metadata!.name! };
  const { rbac } = api.clients;
  return api.call(
    `create ${describeBinding(ref)}`,
    signal,
    (o) => (ref.namespace === undefined ? rbac.createClusterRoleBinding({ body }, o) : rbac.createNamespacedRoleBinding({ namespace: ref.namespace, body }, o)),
    [409],
  );
}

/** Replaces the binding if its resourceVersion is still the one in `body`; null on 409 Conflict (re-read and try again) or 404. */
export function replaceBinding(api: KubeApi, body: V1RoleBinding, signal: AbortSignal): Promise<V1RoleBinding | null> {
  const ref = { namespace: body.metadata?.namespace, name: body.metadata!.name! };
  const { rbac } = api.clients;
  return api.call(
    `update ${describeBinding(ref)}`,
    signal,
    (o) =>
      ref.namespace === undefined
        ? rbac.replaceClusterRoleBinding({ name: ref.name, body }, o)
        : rbac.replaceNamespacedRoleBinding({ name: ref.name, namespace: ref.namespace, body }, o),
    [404, 409],
  );
}

/**
 * Deletes the binding; with `uid`, only that very object (409 Conflict if it was replaced).
 * Resolves 'gone' when it was already gone, 'conflict' on a failed precondition, else 'deleted'.
 */
export async function deleteBinding(api: KubeApi, ref: BindingRef, signal: AbortSignal, uid?: string): Promise<'deleted' | 'gone' | 'conflict'> {
  const { rbac } = api.clients;
  const body = { propagationPolicy: 'Background', ...(uid ? { preconditions: { uid } } : {}) };
  const result = await api.outcome(
    `delete ${describeBinding(ref)}`,
    signal,
    (o) =>
      ref.namespace === undefined
        ? rbac.deleteClusterRoleBinding({ name: ref.name, body }, o)
        : rbac.deleteNamespacedRoleBinding({ name: ref.name, namespace: ref.namespace, body }, o),
    [404, 409],
  );
  return 'value' in result ? 'deleted' : result.status === 404 ? 'gone' : 'conflict';
}

/** Every binding in a namespace (or every ClusterRoleBinding) matching the selector, page by page. */
export async function listBindings(api: KubeApi, namespace: string | undefined, labelSelector: string, signal: AbortSignal): Promise<V1RoleBinding[]> {
  const { rbac } = api.clients;
  const items: V1RoleBinding[] = [];
  let cont: string | undefined;
  do {
    const request = { labelSelector, limit: PAGE, ...(cont ? { _continue: cont } : {}) };
    const page = await api.call(`list ${bindingKind({ namespace })}s${namespace ? ` in ${namespace}` : ''}`, signal, (o) =>
      namespace === undefined ? rbac.listClusterRoleBinding(request, o) : rbac.listNamespacedRoleBinding({ ...request, namespace }, o),
    );
    items.push(...page!.items.map((item) => ({ ...item, metadata: { ...item.metadata, ...(namespace ? { namespace } : {}) } })));
    cont = page!.metadata?._continue || undefined;
  } while (cont);
  return items;
}
