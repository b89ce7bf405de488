import type { V1ServiceAccount } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { LapseError } from '../../domain/errors.js';
import type { GrantSpec } from '../types.js';
import { GRANT_LABEL, grantAnnotations, grantLabels, grantObjectName } from './bindings.js';
import type { ClusterEndpoint, KubeApi } from './kube-api.js';

/**
 * The ephemeral ServiceAccount of a `subject: serviceAccount` grant, its TokenRequest tokens and
 * the kubeconfig handed to the requester. A bound token names its ServiceAccount's uid, so
 * deleting the account ends every token issued for it; recreating it (a repeated provision)
 * likewise ends the tokens of the earlier one, which may have been lost in a crash.
 */
const MIN_TOKEN_SECONDS = 600;

export function serviceAccountRef(grant: GrantSpec, namespace: string): { namespace: string; name: string } {
  return { namespace, name: grantObjectName(grant.grantId) };
}

/** Creates the grant's ServiceAccount, replacing one left by an earlier attempt (a new uid: its tokens die). */
export async function freshServiceAccount(api: KubeApi, grant: GrantSpec, namespace: string, signal: AbortSignal): Promise<V1ServiceAccount> {
  const { core } = api.clients;
  const ref = serviceAccountRef(grant, namespace);
  const body: V1ServiceAccount = {
    apiVersion: 'v1',
    kind: 'ServiceAccount',
    metadata: { name: ref.name, namespace, labels: grantLabels(grant), annotations: grantAnnotations(grant) },
    automountServiceAccountToken: false,
  };
  for (let attempt = 0; attempt < 3; attempt++) {
    const created = await api.call(
      `create ServiceAccount ${namespace}/${ref.name}`,
      signal,
      (o) => core.createNamespacedServiceAccount({ namespace, body }, o),
      [409],
    );
    if (created) return created;
    const existing = await readServiceAccount(api, ref, signal);
    if (!existing) continue;
    if (existing.metadata?.labels?.[GRANT_LABEL] !== grant.grantId)
      throw new LapseError(
        'conflict',
        `kubernetes target ${grant.target.name}: ServiceAccount ${namespace}/${ref.name} exists but is not grant ${grant.grantId}'s`,
        {
          where: `targets.${grant.target.name}`,
          hint: 'delete or rename that ServiceAccount; Lapse names ServiceAccounts after grant ids and will not take over one it did not make',
        },
      );
    await deleteServiceAccount(api, ref, signal, existing.metadata.uid);
  }
  throw new LapseError(
    'connector_failed',
    `kubernetes target ${grant.target.name}: ServiceAccount ${namespace}/${ref.name} from an earlier attempt is still being deleted`,
    {
      where: `targets.${grant.target.name}`,
      hint: 'Lapse retries the provision; if it persists, look for finalizers on that ServiceAccount',
    },
  );
}

export function readServiceAccount(api: KubeApi, ref: { namespace: string; name: string }, signal: AbortSignal): Promise<V1ServiceAccount | null> {
  return api.call(`get ServiceAccount ${ref.namespace}/${ref.name}`, signal, (o) => api.clients.core.readNamespacedServiceAccount(ref, o), [404]);
}

/** Deletes the ServiceAccount (only that uid, when given); already gone or replaced is fine. */
export async function deleteServiceAccount(api: KubeApi, ref: { namespace: string; name: string }, signal: AbortSignal, uid?: string): Promise<void> {
  const body = { propagationPolicy: 'Background', ...(uid ? { preconditions: { uid } } : {}) };
  await api.call(
    `delete ServiceAccount ${ref.namespace}/${ref.name}`,
    signal,
    (o) => api.clients.core.deleteNamespacedServiceAccount({ ...ref, body }, o),
    [404, 409],
  );
}

/**
 * A TokenRequest token lasting until `notAfter`, but at least the API's minimum of 10 minutes
 * (revoke deletes the account, which ends it sooner). The server may cut the lifetime
 * (--service-account-max-token-expiration): the expiry it reports is the one returned.
 */
export async function requestToken(
  api: KubeApi,
  ref: { namespace: string; name: string },
  notAfter: Date,
  signal: AbortSignal,
): Promise<{ token: string; expiresAt: string }> {
  const expirationSeconds = Math.max(MIN_TOKEN_SECONDS, Math.ceil((notAfter.getTime() - Date.now()) / 1000));
  const answer = await api.call(`create token for ServiceAccount ${ref.namespace}/${ref.name}`, signal, (o) =>
    api.clients.core.createNamespacedServiceAccountToken({ ...ref, body: { spec: { audiences: [], expirationSeconds } } }, o),
  );
  const token = answer?.status?.token;
  if (!token)
    throw new LapseError('connector_failed', `kubernetes target: the TokenRequest for ServiceAccount ${ref.namespace}/${ref.name} returned no token`, {});
  const expiry = answer.status!.expirationTimestamp as unknown;
  return { token, expiresAt: expiry instanceof Date ? expiry.toISOString() : String(expiry) };
}

/** The requester's credentials: a kubeconfig for the ServiceAccount (handed out once), and its parts. */
export function serviceAccountCredentials(
  endpoint: ClusterEndpoint,
  targetName: string,
  ref: { namespace: string; name: string },
  defaultNamespace: string,
  token: { token: string; expiresAt: string },
): Record<string, string> {
  const cluster = { server: endpoint.server, ...(endpoint.caPem ? { 'certificate-authority-data': Buffer.from(endpoint.caPem).toString('base64') } : {}) };
  const context = `${targetName}-${ref.name}`;
  const kubeconfig = stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: targetName, cluster }],
    users: [{ name: ref.name, user: { token: token.token } }],
    contexts: [{ name: context, context: { cluster: targetName, user: ref.name, namespace: defaultNamespace } }],
    'current-context': context,
  });
  return {
    kubeconfig,
    token: token.token,
    server: endpoint.server,
    namespace: defaultNamespace,
    serviceAccount: `${ref.namespace}/${ref.name}`,
    expiresAt: token.expiresAt,
  };
}

/** Deletes the grant's ServiceAccount and reads it back: null when gone, else why not yet. One that is not the grant's is left alone. */
export async function removeGrantServiceAccount(
  api: KubeApi,
  grantId: string,
  ref: { namespace: string; name: string },
  signal: AbortSignal,
): Promise<string | null> {
  const existing = await readServiceAccount(api, ref, signal);
  if (!existing || existing.metadata?.labels?.[GRANT_LABEL] !== grantId) return null;
  if (!existing.metadata.deletionTimestamp) await deleteServiceAccount(api, ref, signal, existing.metadata.uid);
  const after = await readServiceAccount(api, ref, signal);
  if (!after || after.metadata?.labels?.[GRANT_LABEL] !== grantId) return null;
  const finalizers = after.metadata.finalizers ?? [];
  return `ServiceAccount ${ref.namespace}/${ref.name} is marked for deletion but still exists${finalizers.length > 0 ? ` (finalizers: ${finalizers.join(', ').slice(0, 200)})` : ''}; Kubernetes may accept its tokens until it is gone`;
}
