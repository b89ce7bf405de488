import type { TargetConfig } from '../../config/types.js';
import { LapseError } from '../../domain/errors.js';
import { defaultWarn, type Warn } from '../shared/index.js';
import type { AccessHandle, Connector, CurrentAccess, GrantSpec, ProvisionResult, RevokeResult } from '../types.js';
import { listGrantAccess, removeListedAccess } from './access-list.js';
import { bindingKind, desiredBinding, grantObjectName, type BindingRef } from './bindings.js';
import { ensureGrantBinding, removeGrantBinding } from './grant-binding.js';
import { KubeApi } from './kube-api.js';
import {
  freshServiceAccount,
  readServiceAccount,
  removeGrantServiceAccount,
  requestToken,
  serviceAccountCredentials,
  serviceAccountRef,
} from './service-accounts.js';
import { parseEntitlement, parseTarget, targetProblems, type KubeEntitlement } from './settings.js';
import { checkTargetAccess } from './target-check.js';

export interface KubernetesConnectorOptions {
  /** Where the warning about `tls.insecureSkipVerify` goes (default: stderr). */
  readonly warn?: Warn;
}

/** How soon to read back a binding or ServiceAccount still being deleted (finalizers). */
const RECHECK_MS = 2_000;

/**
 * Kubernetes RBAC through the API server: a RoleBinding (entitlement with a namespace) or
 * ClusterRoleBinding per grant, named `lapse-<grant id>` and labelled with the grant, binding the
 * entitlement's Role or ClusterRole to the requester's Kubernetes user or group — or to an
 * ephemeral ServiceAccount of the same name whose TokenRequest token (lasting until the grant's
 * end) is handed out once in a kubeconfig. Revoke deletes the ServiceAccount (ending its tokens)
 * and the binding, then reads both back.
 */
export class KubernetesConnector implements Connector {
  readonly type = 'kubernetes';
  private readonly warn: Warn;
  /** One client per loaded target (config reloads build new TargetConfig objects), so exec credential plugins and TLS setup run once. */
  private readonly apis = new WeakMap<TargetConfig, Promise<KubeApi>>();

  constructor(options: KubernetesConnectorOptions = {}) {
    this.warn = options.warn ?? defaultWarn;
  }

  validateSettings(target: TargetConfig): string[] {
    return targetProblems(target);
  }

  async checkTarget(target: TargetConfig, signal: AbortSignal): Promise<void> {
    await checkTargetAccess(await this.api(target), target, signal);
  }

  accessKey(grant: GrantSpec): string {
    // NB. One binding per grant: ending one grant deletes only its own binding, so overlapping
    // grants of the same role never take access from each other and need no shared count.
    return `${grant.target.name}/${grantObjectName(grant.grantId)}`;
  }

  async provision(grant: GrantSpec, signal: AbortSignal): Promise<ProvisionResult> {
    if (signal.aborted) throw deadline(grant.target.name);
    const settings = parseTarget(grant.target);
    const entitlement = parseEntitlement(grant.entitlement);
    const api = await this.api(grant.target);
    const desired = desiredBinding(grant, settings, entitlement);
    const handle = handleOf(grant, entitlement);
    if (entitlement.subject !== 'serviceAccount') {
      await ensureGrantBinding(api, grant, desired, signal);
      return { handle };
    }
    const account = serviceAccountRef(grant, entitlement.serviceAccountNamespace!);
    // A repeated provision replaces the ServiceAccount, so a token an earlier attempt issued (and may have lost) dies with it.
    await freshServiceAccount(api, grant, account.namespace, signal);
    await ensureGrantBinding(api, grant, desired, signal);
    const token = await requestToken(api, account, grant.notAfter, signal);
    return { handle, credentials: serviceAccountCredentials(api.endpoint, grant.target.name, account, entitlement.namespace ?? account.namespace, token) };
  }

  /** Binding grants: the expiry annotation follows the grant. ServiceAccount grants: a fresh token lasting until the new end. */
  async extend(grant: GrantSpec, handle: AccessHandle | null, signal: AbortSignal): Promise<Pick<ProvisionResult, 'credentials'> | void> {
    const settings = parseTarget(grant.target);
    const entitlement = parseEntitlement(grant.entitlement);
    const api = await this.api(grant.target);
    const { binding, serviceAccount } = refsOf(grant, entitlement, handle);
    const desired = desiredBinding(grant, settings, entitlement);
    desired.metadata!.namespace = binding.namespace;
    if (!serviceAccount) return void (await ensureGrantBinding(api, grant, desired, signal));
    if (!(await readServiceAccount(api, serviceAccount, signal))) await freshServiceAccount(api, grant, serviceAccount.namespace, signal);
    await ensureGrantBinding(api, grant, desired, signal);
    const token = await requestToken(api, serviceAccount, grant.notAfter, signal);
    return { credentials: serviceAccountCredentials(api.endpoint, grant.target.name, serviceAccount, binding.namespace ?? serviceAccount.namespace, token) };
  }

  async revoke(grant: GrantSpec, handle: AccessHandle | null, signal: AbortSignal): Promise<RevokeResult | void> {
    if (signal.aborted) throw deadline(grant.target.name);
    parseTarget(grant.target);
    const entitlement = parseEntitlement(grant.entitlement);
    const api = await this.api(grant.target);
    const { binding, serviceAccount } = refsOf(grant, entitlement, handle);
    // The ServiceAccount first: deleting it ends every token issued for it at once.
    const pending = [
      serviceAccount ? await removeGrantServiceAccount(api, grant.grantId, serviceAccount, signal) : null,
      await removeGrantBinding(api, grant, binding, signal),
    ].filter((p): p is string => p !== null);
    if (pending.length > 0) return { propagationPending: pending.join('; '), recheckInMs: RECHECK_MS };
  }

  async listAccess(target: TargetConfig, signal: AbortSignal): Promise<CurrentAccess[]> {
    const settings = parseTarget(target);
    return listGrantAccess(await this.api(target), target, settings, signal);
  }

  async removeAccess(target: TargetConfig, access: CurrentAccess, signal: AbortSignal): Promise<void> {
    parseTarget(target);
    await removeListedAccess(await this.api(target), target, access, signal);
  }

  private api(target: TargetConfig): Promise<KubeApi> {
    let api = this.apis.get(target);
    if (!api) {
      api = KubeApi.open(target, parseTarget(target), this.warn);
      // A failed load (a kubeconfig file not there yet) is tried again on the next call.
      api.catch(() => this.apis.delete(target));
      this.apis.set(target, api);
    }
    return api;
  }
}

/** What provision records: where the binding (and ServiceAccount) is, so revoke finds them even if the entitlement's settings change. */
function handleOf(grant: GrantSpec, entitlement: KubeEntitlement): AccessHandle {
  const name = grantObjectName(grant.grantId);
  return {
    kind: bindingKind({ namespace: entitlement.namespace }),
    ...(entitlement.namespace === undefined ? {} : { namespace: entitlement.namespace }),
    name,
    ...(entitlement.subject === 'serviceAccount' ? { serviceAccount: { namespace: entitlement.serviceAccountNamespace!, name } } : {}),
  };
}

function refsOf(
  grant: GrantSpec,
  entitlement: KubeEntitlement,
  handle: AccessHandle | null,
): { binding: BindingRef; serviceAccount: { namespace: string; name: string } | undefined } {
  const expected = handleOf(grant, entitlement);
  const h = handle ?? expected;
  const name = grantObjectName(grant.grantId);
  const sa = h.serviceAccount as { namespace?: unknown; name?: unknown } | undefined;
  const valid =
    h.name === name &&
    (h.kind === 'RoleBinding' ? typeof h.namespace === 'string' : h.kind === 'ClusterRoleBinding' && h.namespace === undefined) &&
    (sa === undefined || (typeof sa.namespace === 'string' && sa.name === name));
  if (!valid)
    throw new LapseError(
      'connector_failed',
      `kubernetes target ${grant.target.name}: the handle of grant ${grant.grantId} does not name the grant's own binding`,
      {
        where: `grants.${grant.grantId}.handle`,
      },
    );
  return { binding: { namespace: h.namespace as string | undefined, name }, serviceAccount: sa ? { namespace: sa.namespace as string, name } : undefined };
}

function deadline(target: string): LapseError {
  return new LapseError('connector_timeout', `kubernetes target ${target}: the call's deadline passed before it started`, { where: `targets.${target}` });
}
