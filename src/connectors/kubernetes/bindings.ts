import type { RbacV1Subject, V1RoleBinding } from '@kubernetes/client-node';
import { isId } from '../../domain/ids.js';
import { LapseError } from '../../domain/errors.js';
import type { GrantSpec } from '../types.js';
import { subjectNameProblem, type KubeEntitlement, type KubeTarget } from './settings.js';

/**
 * What a grant looks like in the cluster: its binding (and service account) named from the grant
 * id, the labels that say whose it is, and the subject it binds. Pure: no API calls here.
 */
export const RBAC_GROUP = 'rbac.authorization.k8s.io';
export const MANAGED_BY = 'app.kubernetes.io/managed-by';
export const GRANT_LABEL = 'lapse.dev/grant';
export const TARGET_LABEL = 'lapse.dev/target';
export const ENTITLEMENT_LABEL = 'lapse.dev/entitlement';
export const PRINCIPAL_ANNOTATION = 'lapse.dev/principal';
export const EXPIRES_ANNOTATION = 'lapse.dev/expires-at';

/** The label selector of this target's bindings (and service accounts). */
export const managedSelector = (target: string) => `${MANAGED_BY}=lapse,${TARGET_LABEL}=${target}`;
/** Everything not made by any Lapse. */
export const unmanagedSelector = `${MANAGED_BY}!=lapse`;

/** Where a binding lives: a namespace (RoleBinding) or the cluster (ClusterRoleBinding). */
export interface BindingRef {
  readonly namespace: string | undefined;
  readonly name: string;
}

export const bindingKind = (ref: Pick<BindingRef, 'namespace'>) => (ref.namespace === undefined ? 'ClusterRoleBinding' : 'RoleBinding');
export const describeBinding = (ref: BindingRef) =>
  ref.namespace === undefined ? `ClusterRoleBinding ${ref.name}` : `RoleBinding ${ref.namespace}/${ref.name}`;

const NAME = /^lapse-([0-9a-z]{26})$/;

/**
 * `grt_01jx…` becomes `lapse-01jx…`: a valid DNS-1123 label (32 characters), so the same name
 * serves the binding and the ServiceAccount, and provision, revoke and reconciliation find them
 * again from the grant id alone.
 */
export function grantObjectName(grantId: string): string {
  if (!isId('grant', grantId)) throw new LapseError('validation_failed', `"${grantId.slice(0, 40)}" is not a grant id`, { where: 'grantId' });
  return `lapse-${grantId.slice(4)}`;
}

/** The grant id an object was named from, or null for any other name. */
export function grantIdOfName(name: string): string | null {
  const match = NAME.exec(name);
  return match ? `grt_${match[1]}` : null;
}

/** The Kubernetes user or group name for a principal: its `accounts` entry, or the prefix + its id. */
export function subjectName(settings: KubeTarget, mode: 'user' | 'group', principalId: string, where: string): string {
  const name = settings.accounts[principalId] ?? `${mode === 'user' ? settings.userPrefix : settings.groupPrefix}${principalId}`;
  const problem = subjectNameProblem(name);
  if (problem)
    throw new LapseError('validation_failed', `kubernetes ${mode} name for principal ${JSON.stringify(principalId.slice(0, 80))} ${problem}`, {
      where,
      hint: 'map the principal to a Kubernetes name in settings.accounts',
    });
  return name;
}

/** The subject a grant binds. */
export function grantSubject(grant: GrantSpec, settings: KubeTarget, entitlement: KubeEntitlement): RbacV1Subject {
  if (entitlement.subject === 'serviceAccount')
    return { kind: 'ServiceAccount', name: grantObjectName(grant.grantId), namespace: entitlement.serviceAccountNamespace! };
  const where = `targets.${grant.target.name}.settings.accounts`;
  return {
    kind: entitlement.subject === 'user' ? 'User' : 'Group',
    apiGroup: RBAC_GROUP,
    name: subjectName(settings, entitlement.subject, grant.principalId, where),
  };
}

export function grantLabels(grant: GrantSpec): Record<string, string> {
  return { [MANAGED_BY]: 'lapse', [GRANT_LABEL]: grant.grantId, [TARGET_LABEL]: grant.target.name, [ENTITLEMENT_LABEL]: grant.entitlement.name };
}

export function grantAnnotations(grant: GrantSpec): Record<string, string> {
  return { [PRINCIPAL_ANNOTATION]: grant.principalId, [EXPIRES_ANNOTATION]: grant.notAfter.toISOString() };
}

/** The binding a grant should have. */
export function desiredBinding(grant: GrantSpec, settings: KubeTarget, entitlement: KubeEntitlement): V1RoleBinding {
  return {
    apiVersion: `${RBAC_GROUP}/v1`,
    kind: entitlement.namespace === undefined ? 'ClusterRoleBinding' : 'RoleBinding',
    metadata: {
      name: grantObjectName(grant.grantId),
      ...(entitlement.namespace === undefined ? {} : { namespace: entitlement.namespace }),
      labels: grantLabels(grant),
      annotations: grantAnnotations(grant),
    },
    roleRef: { apiGroup: RBAC_GROUP, kind: entitlement.roleRef.kind, name: entitlement.roleRef.name },
    subjects: [grantSubject(grant, settings, entitlement)],
  };
}

export const sameSubject = (a: RbacV1Subject, b: RbacV1Subject) =>
  a.kind === b.kind && a.name === b.name && (a.kind !== 'ServiceAccount' || a.namespace === b.namespace);

/** Whether an existing binding is this grant's, as Lapse would have made it. */
export function isGrantsBinding(found: V1RoleBinding, grant: GrantSpec): boolean {
  return found.metadata?.labels?.[GRANT_LABEL] === grant.grantId && found.metadata.labels[MANAGED_BY] === 'lapse';
}
