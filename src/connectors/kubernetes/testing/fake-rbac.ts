/**
 * The RBAC authorizer of the fake API server, after k8s.io/kubernetes/plugin/pkg/auth/authorizer/rbac:
 * a request is allowed when a ClusterRoleBinding, or a RoleBinding in the request's namespace,
 * binds one of the caller's identities (user, groups, service account) to a role with a rule
 * matching the verb, API group, resource (with subresource) and name. Rules with resourceNames
 * never match requests without a name (create, list), as in the real authorizer.
 */
export interface Identity {
  readonly user: string;
  readonly groups: readonly string[];
}

export interface Attributes {
  readonly verb: string;
  readonly group: string;
  /** `serviceaccounts/token` for a subresource. */
  readonly resource: string;
  readonly namespace: string;
  readonly name: string;
}

export interface PolicyRule {
  readonly verbs?: string[];
  readonly apiGroups?: string[];
  readonly resources?: string[];
  readonly resourceNames?: string[];
  readonly nonResourceURLs?: string[];
}

export interface Subject {
  readonly kind: string;
  readonly name: string;
  readonly namespace?: string;
  readonly apiGroup?: string;
}

export interface Binding {
  readonly metadata: { readonly namespace?: string };
  readonly subjects?: readonly Subject[];
  readonly roleRef: { readonly kind: string; readonly name: string };
}

/** What the authorizer reads from the cluster's current state (its informers, in the real server). */
export interface RbacView {
  clusterRoleBindings(): readonly Binding[];
  roleBindings(namespace: string): readonly Binding[];
  rules(kind: string, namespace: string, name: string): readonly PolicyRule[];
}

const has = (list: readonly string[] | undefined, value: string) => list !== undefined && (list.includes('*') || list.includes(value));

function ruleAllows(rule: PolicyRule, a: Attributes): boolean {
  if (!has(rule.verbs, a.verb) || !has(rule.apiGroups, a.group) || !has(rule.resources, a.resource)) return false;
  if (!rule.resourceNames || rule.resourceNames.length === 0) return true;
  return a.name !== '' && rule.resourceNames.includes(a.name);
}

export function bindsIdentity(binding: Binding, who: Identity): boolean {
  return (binding.subjects ?? []).some((s) => {
    if (s.kind === 'User') return s.name === who.user;
    if (s.kind === 'Group') return who.groups.includes(s.name);
    if (s.kind === 'ServiceAccount') return who.user === `system:serviceaccount:${s.namespace ?? ''}:${s.name}`;
    return false;
  });
}

export function authorize(view: RbacView, who: Identity, a: Attributes): boolean {
  for (const binding of view.clusterRoleBindings()) {
    if (bindsIdentity(binding, who) && view.rules('ClusterRole', '', binding.roleRef.name).some((r) => ruleAllows(r, a))) return true;
  }
  if (a.namespace === '') return false;
  for (const binding of view.roleBindings(a.namespace)) {
    if (bindsIdentity(binding, who) && view.rules(binding.roleRef.kind, a.namespace, binding.roleRef.name).some((r) => ruleAllows(r, a))) return true;
  }
  return false;
}

/** The real server's wording for a refused request. */
export function forbiddenMessage(who: Identity, a: Attributes): string {
  const [resource, subresource] = a.resource.split('/') as [string, string | undefined];
  const object = `${resource}${a.group ? `.${a.group}` : ''}${a.name ? ` "${a.name}"` : ''}`;
  const where = a.namespace ? `in the namespace "${a.namespace}"` : 'at the cluster scope';
  return `${object} is forbidden: User "${who.user}" cannot ${a.verb} resource "${resource}"${subresource ? `/${subresource}` : ''} in API group "${a.group}" ${where}`;
}
