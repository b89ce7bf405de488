import type { RbacV1Subject, V1RoleBinding } from '@kubernetes/client-node';
import type { TargetConfig } from '../../config/types.js';
import { LapseError } from '../../domain/errors.js';
import type { CurrentAccess } from '../types.js';
import { deleteBinding, listBindings, readBinding, replaceBinding } from './binding-api.js';
import {
  ENTITLEMENT_LABEL,
  GRANT_LABEL,
  MANAGED_BY,
  PRINCIPAL_ANNOTATION,
  TARGET_LABEL,
  bindingKind,
  describeBinding,
  grantIdOfName,
  managedSelector,
  sameSubject,
  unmanagedSelector,
  type BindingRef,
} from './bindings.js';
import type { KubeApi } from './kube-api.js';
import { removeGrantServiceAccount } from './service-accounts.js';
import { parseEntitlement, type KubeEntitlement, type KubeTarget } from './settings.js';

/**
 * Reconciliation. What `listAccess` reports, per entitlement:
 *
 * - this target's own bindings (labelled `app.kubernetes.io/managed-by=lapse` and
 *   `lapse.dev/target=<target>`), with their grant;
 * - every other binding that gives the entitlement's role in its scope — a RoleBinding of the
 *   role in the entitlement's namespace, or a ClusterRoleBinding of the ClusterRole, which
 *   reaches every namespace — one entry per subject, without a grant ("unmanaged": standing
 *   access to the same role, however it was made). Not reported: bindings other Lapse targets
 *   made (they reconcile their own), Kubernetes' bootstrap bindings
 *   (`kubernetes.io/bootstrapping=rbac-defaults`), and `system:` users and groups and kube-system
 *   service accounts, which are the cluster's own.
 *
 * Each entry's `account` names the binding and the subject, e.g. `RoleBinding prod/ops User oidc:alice`,
 * so `removeAccess` finds exactly that subject again.
 */
const ACCOUNT = /^(RoleBinding|ClusterRoleBinding) (?:([a-z0-9-]+)\/)?([^ /]+) (User|Group|ServiceAccount) (?:([a-z0-9-]+)\/)?(.+)$/s;

export function accountOf(ref: BindingRef, subject: RbacV1Subject): string {
  const who = subject.kind === 'ServiceAccount' ? `${subject.namespace ?? ref.namespace ?? ''}/${subject.name}` : subject.name;
  return `${bindingKind(ref)} ${ref.namespace ? `${ref.namespace}/` : ''}${ref.name} ${subject.kind} ${who}`;
}

function parseAccount(account: string): { ref: BindingRef; subject: RbacV1Subject } | null {
  const m = ACCOUNT.exec(account);
  if (!m || (m[1] === 'RoleBinding') !== (m[2] !== undefined)) return null;
  const kind = m[4]!;
  const subject: RbacV1Subject =
    kind === 'ServiceAccount'
      ? { kind, name: m[6]!, namespace: m[5] ?? '' }
      : { kind, apiGroup: 'rbac.authorization.k8s.io', name: m[5] ? `${m[5]}/${m[6]}` : m[6]! };
  return { ref: { namespace: m[2], name: m[3]! }, subject };
}

/** Subjects that are Kubernetes' own, never reported or removed. */
function isSystemSubject(subject: RbacV1Subject): boolean {
  if (subject.kind === 'ServiceAccount') return subject.namespace === 'kube-system';
  return subject.name.startsWith('system:');
}

const isBootstrap = (binding: V1RoleBinding) => binding.metadata?.labels?.['kubernetes.io/bootstrapping'] === 'rbac-defaults';

/** The Lapse principal a subject stands for: its `accounts` entry, or its name without the prefix. */
function principalOf(settings: KubeTarget, subject: RbacV1Subject): string {
  if (subject.kind === 'ServiceAccount') return `system:serviceaccount:${subject.namespace ?? ''}:${subject.name}`;
  const mapped = Object.entries(settings.accounts).find(([, name]) => name === subject.name)?.[0];
  if (mapped !== undefined) return mapped;
  const prefix = subject.kind === 'User' ? settings.userPrefix : settings.groupPrefix;
  return prefix && subject.name.startsWith(prefix) ? subject.name.slice(prefix.length) : subject.name;
}

/** Whether a binding in `namespace` (undefined: a ClusterRoleBinding) gives the entitlement's role in the entitlement's scope. */
function givesEntitlement(binding: V1RoleBinding, namespace: string | undefined, entitlement: KubeEntitlement): boolean {
  const { roleRef } = entitlement;
  if (binding.roleRef.kind !== roleRef.kind || binding.roleRef.name !== roleRef.name) return false;
  if (namespace === undefined) return roleRef.kind === 'ClusterRole';
  return namespace === entitlement.namespace;
}

/**
 * NB. Several entitlements may give the same role in the same place (a user one and a
 * ServiceAccount one): a standing subject is reported once, under the entitlement it resembles
 * most — the binding's own scope first, then the subject's kind — so it is neither counted twice
 * nor removed twice, and a live grant of that entitlement still covers it.
 */
function closest<E extends KubeEntitlement & { name: string }>(candidates: readonly E[], namespace: string | undefined, subject: RbacV1Subject): E {
  const kind = { User: 'user', Group: 'group', ServiceAccount: 'serviceAccount' }[subject.kind];
  const score = (e: E) => (e.namespace === namespace ? 2 : 0) + (e.subject === kind ? 1 : 0);
  return candidates.reduce((best, e) => (score(e) > score(best) ? e : best));
}

export async function listGrantAccess(api: KubeApi, target: TargetConfig, settings: KubeTarget, signal: AbortSignal): Promise<CurrentAccess[]> {
  const entitlements = [...target.entitlements.values()].map((e) => ({ name: e.name, ...parseEntitlement(e) }));
  const scopes = new Map<string, string | undefined>();
  for (const e of entitlements) {
    scopes.set(e.namespace ?? '', e.namespace);
    if (e.roleRef.kind === 'ClusterRole') scopes.set('', undefined);
  }
  const found: CurrentAccess[] = [];
  for (const namespace of scopes.values()) {
    for (const binding of await listBindings(api, namespace, managedSelector(target.name), signal)) {
      const ref = { namespace, name: binding.metadata!.name! };
      const grantId = binding.metadata?.labels?.[GRANT_LABEL] ?? grantIdOfName(ref.name);
      const entitlement = binding.metadata?.labels?.[ENTITLEMENT_LABEL] ?? '';
      for (const subject of binding.subjects ?? []) {
        const principalId = binding.metadata?.annotations?.[PRINCIPAL_ANNOTATION] ?? principalOf(settings, subject);
        found.push({ account: accountOf(ref, subject), principalId, entitlement, grantId });
      }
    }
    for (const binding of await listBindings(api, namespace, unmanagedSelector, signal)) {
      if (isBootstrap(binding)) continue;
      const ref = { namespace, name: binding.metadata!.name! };
      const candidates = entitlements.filter((e) => givesEntitlement(binding, namespace, e));
      for (const subject of binding.subjects ?? []) {
        if (isSystemSubject(subject) || candidates.length === 0) continue;
        const entitlement = closest(candidates, namespace, subject);
        found.push({ account: accountOf(ref, subject), principalId: principalOf(settings, subject), entitlement: entitlement.name, grantId: null });
      }
    }
  }
  return found;
}

/**
 * Removes one entry `listGrantAccess` reported: this target's own binding (and its
 * ServiceAccount) whole; from any other binding only that subject, deleting the binding when it
 * was the last. Refuses entries that do not give the named entitlement, and Kubernetes' own.
 */
export async function removeListedAccess(api: KubeApi, target: TargetConfig, access: CurrentAccess, signal: AbortSignal): Promise<void> {
  const where = `targets.${target.name}`;
  const parsed = parseAccount(access.account);
  const config = target.entitlements.get(access.entitlement);
  if (!parsed || (!config && access.grantId === null))
    throw new LapseError('validation_failed', `kubernetes target ${target.name}: "${access.account.slice(0, 200)}" is not access this target reported`, {
      where,
    });
  const { ref, subject } = parsed;
  for (let attempt = 0; attempt < 6; attempt++) {
    const binding = await readBinding(api, ref, signal);
    if (!binding || !(binding.subjects ?? []).some((s) => sameSubject(s, subject))) return;
    const labels = binding.metadata?.labels ?? {};
    if (labels[MANAGED_BY] === 'lapse' && labels[TARGET_LABEL] === target.name) {
      if ((await deleteBinding(api, ref, signal, binding.metadata?.uid)) === 'conflict') continue;
      const grantId = labels[GRANT_LABEL];
      if (subject.kind === 'ServiceAccount' && grantId && grantIdOfName(subject.name) === grantId) {
        await removeGrantServiceAccount(api, grantId, { namespace: subject.namespace!, name: subject.name }, signal);
      }
      return;
    }
    if (
      labels[MANAGED_BY] === 'lapse' ||
      isBootstrap(binding) ||
      isSystemSubject(subject) ||
      !config ||
      !givesEntitlement(binding, ref.namespace, parseEntitlement(config))
    )
      throw new LapseError(
        'validation_failed',
        `kubernetes target ${target.name}: ${describeBinding(ref)} is not one this target reconciles for entitlement ${access.entitlement}`,
        {
          where,
        },
      );
    const rest = (binding.subjects ?? []).filter((s) => !sameSubject(s, subject));
    if (rest.length === 0) {
      if ((await deleteBinding(api, ref, signal, binding.metadata?.uid)) !== 'conflict') return;
    } else if (await replaceBinding(api, { ...binding, subjects: rest }, signal)) return;
  }
  throw new LapseError(
    'connector_failed',
    `kubernetes target ${target.name}: ${describeBinding(ref)} kept changing while Lapse removed ${subject.kind} ${subject.name}`,
    {
      where,
      hint: 'something else is editing the binding (a GitOps controller will also put the subject back); reconciliation tries again next time',
    },
  );
}
