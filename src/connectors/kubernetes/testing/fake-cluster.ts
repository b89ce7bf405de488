/**
 * The state behind the fake Kubernetes API server (fake-api-server.ts): namespaces, RBAC objects
 * and service accounts with uid, resourceVersion (one counter for the cluster, as etcd's revision),
 * finalizers and deletionTimestamp; bearer tokens, including the ones TokenRequest issues, which
 * stop authenticating when their service account is deleted (bound tokens check the SA's uid).
 * Every operation checks what the real registry checks and throws a StatusError otherwise.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { StatusError, invalid, notFound, qualified } from './fake-status.js';
import { authorize, type Attributes, type Binding, type Identity, type PolicyRule, type RbacView } from './fake-rbac.js';
import { bindingCauses, metadataCauses } from './fake-validation.js';
import { parseLabelSelector } from './label-selector.js';

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: {
    name: string;
    namespace?: string;
    uid: string;
    resourceVersion: string;
    creationTimestamp: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    finalizers?: string[];
    deletionTimestamp?: string;
  };
  [field: string]: unknown;
}

export interface ResourceType {
  readonly resource: string;
  readonly group: string;
  readonly kind: string;
  readonly namespaced: boolean;
  readonly nameRule: 'path-segment' | 'dns-subdomain';
}

const RBAC = 'rbac.authorization.k8s.io';
export const RESOURCES: Record<string, ResourceType> = {
  roles: { resource: 'roles', group: RBAC, kind: 'Role', namespaced: true, nameRule: 'path-segment' },
  rolebindings: { resource: 'rolebindings', group: RBAC, kind: 'RoleBinding', namespaced: true, nameRule: 'path-segment' },
  clusterroles: { resource: 'clusterroles', group: RBAC, kind: 'ClusterRole', namespaced: false, nameRule: 'path-segment' },
  clusterrolebindings: { resource: 'clusterrolebindings', group: RBAC, kind: 'ClusterRoleBinding', namespaced: false, nameRule: 'path-segment' },
  serviceaccounts: { resource: 'serviceaccounts', group: '', kind: 'ServiceAccount', namespaced: true, nameRule: 'dns-subdomain' },
};

const MIN_TOKEN_SECONDS = 600;
const MAX_TOKEN_SECONDS = 2 ** 32;

type Token =
  | { readonly kind: 'static'; readonly who: Identity }
  | { readonly kind: 'bound'; readonly namespace: string; readonly name: string; readonly uid: string; readonly expiresAt: number };

const key = (namespace: string | undefined, name: string) => `${namespace ?? ''}/${name}`;
const clone = <T>(value: T): T => structuredClone(value);

export class FakeCluster implements RbacView {
  private revision = 1;
  private readonly namespaces = new Set<string>();
  private readonly store = new Map<string, Map<string, KubeObject>>(Object.keys(RESOURCES).map((r) => [r, new Map()]));
  private readonly tokens = new Map<string, Token>();
  /** The longest token the server issues (--service-account-max-token-expiration); longer requests are cut to it. */
  maxTokenSeconds = 48 * 3600;

  constructor(namespaces: readonly string[] = ['default', 'kube-system']) {
    for (const namespace of namespaces) this.namespaces.add(namespace);
  }

  addNamespace(name: string): void {
    this.namespaces.add(name);
  }

  /** A bearer token authenticating as `who` (what an OIDC or static-token authenticator would give). */
  addToken(who: Identity, token = randomBytes(24).toString('base64url')): string {
    this.tokens.set(token, { kind: 'static', who });
    return token;
  }

  /** The caller behind a bearer token, or undefined (401) for an unknown, expired or orphaned token. */
  authenticate(token: string, now = Date.now()): Identity | undefined {
    const found = this.tokens.get(token);
    if (!found) return undefined;
    if (found.kind === 'static') return { user: found.who.user, groups: [...found.who.groups, 'system:authenticated'] };
    const account = this.store.get('serviceaccounts')!.get(key(found.namespace, found.name));
    if (!account || account.metadata.uid !== found.uid || now >= found.expiresAt) return undefined;
    return {
      user: `system:serviceaccount:${found.namespace}:${found.name}`,
      groups: ['system:serviceaccounts', `system:serviceaccounts:${found.namespace}`, 'system:authenticated'],
    };
  }

  allowed(who: Identity, attributes: Attributes): boolean {
    return authorize(this, who, attributes);
  }

  clusterRoleBindings(): Binding[] {
    return [...this.store.get('clusterrolebindings')!.values()] as unknown as Binding[];
  }

  roleBindings(namespace: string): Binding[] {
    return [...this.store.get('rolebindings')!.values()].filter((b) => b.metadata.namespace === namespace) as unknown as Binding[];
  }

  rules(kind: string, namespace: string, name: string): PolicyRule[] {
    const role = kind === 'ClusterRole' ? this.store.get('clusterroles')!.get(key(undefined, name)) : this.store.get('roles')!.get(key(namespace, name));
    return (role?.rules ?? []) as PolicyRule[];
  }

  /** Every object of a resource, for tests and snapshots (deep copies). */
  all(resource: string): KubeObject[] {
    return [...this.store.get(resource)!.values()].map(clone);
  }

  has(resource: string, namespace: string | undefined, name: string): boolean {
    return this.store.get(resource)!.has(key(namespace, name));
  }

  snapshot(): Map<string, KubeObject[]> {
    return new Map([...this.store.keys()].map((r) => [r, this.all(r)]));
  }

  private requireNamespace(type: ResourceType, namespace: string | undefined): void {
    if (type.namespaced && !this.namespaces.has(namespace ?? '')) throw notFound('namespaces', '', 'Namespace', namespace ?? '');
  }

  get(resource: string, namespace: string | undefined, name: string): KubeObject {
    const type = RESOURCES[resource]!;
    this.requireNamespace(type, namespace);
    const found = this.store.get(resource)!.get(key(namespace, name));
    if (!found) throw notFound(resource, type.group, type.kind, name);
    return clone(found);
  }

  list(resource: string, namespace: string | undefined, labelSelector: string, from?: readonly KubeObject[]): KubeObject[] {
    const type = RESOURCES[resource]!;
    if (namespace !== undefined) this.requireNamespace(type, namespace);
    let matches;
    try {
      matches = parseLabelSelector(labelSelector);
    } catch (error) {
      throw new StatusError('BadRequest', `unable to parse requirement: ${(error as Error).message}`);
    }
    return (from ?? this.all(resource))
      .filter((o) => namespace === undefined || o.metadata.namespace === namespace)
      .filter((o) => matches(o.metadata.labels ?? {}))
      .sort((a, b) => key(a.metadata.namespace, a.metadata.name).localeCompare(key(b.metadata.namespace, b.metadata.name)));
  }

  /** Checks and stores a new object; `bind` answers whether the caller may bind a binding's role (escalation check). */
  create(
    resource: string,
    namespace: string | undefined,
    body: Record<string, unknown>,
    bind?: (roleRef: { kind: string; name: string }) => boolean,
  ): KubeObject {
    const type = RESOURCES[resource]!;
    this.requireNamespace(type, namespace);
    const metadata = this.checkedMetadata(type, namespace, body);
    if (metadata.resourceVersion !== undefined && metadata.resourceVersion !== '')
      throw new StatusError('BadRequest', 'resourceVersion should not be set on objects to be created');
    if (this.store.get(resource)!.has(key(namespace, metadata.name as string)))
      throw new StatusError('AlreadyExists', `${qualified(resource, type.group, metadata.name as string)} already exists`, {
        name: metadata.name as string,
        group: type.group,
        kind: resource,
      });
    this.checkBinding(type, namespace, body, bind);
    const object: KubeObject = {
      ...clone(body),
      apiVersion: type.group ? `${type.group}/v1` : 'v1',
      kind: type.kind,
      metadata: {
        ...clone(metadata),
        name: metadata.name as string,
        ...(type.namespaced ? { namespace } : {}),
        uid: randomUUID(),
        resourceVersion: String(++this.revision),
        creationTimestamp: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
      },
    };
    delete object.metadata.deletionTimestamp;
    this.store.get(resource)!.set(key(namespace, object.metadata.name), object);
    return clone(object);
  }

  /** Replaces an object; a resourceVersion in the body must be the current one (optimistic concurrency). */
  update(
    resource: string,
    namespace: string | undefined,
    name: string,
    body: Record<string, unknown>,
    bind?: (roleRef: { kind: string; name: string }) => boolean,
  ): KubeObject {
    const type = RESOURCES[resource]!;
    const current = this.store.get(resource)!.get(key(namespace, name));
    this.requireNamespace(type, namespace);
    if (!current) throw notFound(resource, type.group, type.kind, name);
    const metadata = this.checkedMetadata(type, namespace, body);
    if (metadata.name !== name) throw new StatusError('BadRequest', 'the name of the object does not match the name on the URL');
    if (metadata.resourceVersion !== undefined && metadata.resourceVersion !== current.metadata.resourceVersion) throw conflict(type, name);
    if (type.kind.endsWith('Binding') && JSON.stringify(body.roleRef) !== JSON.stringify(current.roleRef))
      throw invalid(type.kind, type.group, name, [{ field: 'roleRef', message: 'Invalid value: cannot change roleRef' }]);
    this.checkBinding(type, namespace, body, bind);
    const object: KubeObject = {
      ...clone(body),
      apiVersion: current.apiVersion!,
      kind: current.kind!,
      metadata: {
        ...clone(metadata),
        name,
        ...(type.namespaced ? { namespace } : {}),
        uid: current.metadata.uid,
        creationTimestamp: current.metadata.creationTimestamp,
        resourceVersion: String(++this.revision),
        ...(current.metadata.deletionTimestamp ? { deletionTimestamp: current.metadata.deletionTimestamp } : {}),
      },
    };
    if (object.metadata.deletionTimestamp && (object.metadata.finalizers ?? []).length === 0) {
      this.store.get(resource)!.delete(key(namespace, name));
    } else this.store.get(resource)!.set(key(namespace, name), object);
    return clone(object);
  }

  /**
   * Deletes an object, honouring `preconditions` (uid, resourceVersion → 409 Conflict). An object
   * with finalizers is only marked (deletionTimestamp) and stays, returned, until they are removed.
   */
  delete(resource: string, namespace: string | undefined, name: string, preconditions?: { uid?: string; resourceVersion?: string }): KubeObject | null {
    const type = RESOURCES[resource]!;
    this.requireNamespace(type, namespace);
    const current = this.store.get(resource)!.get(key(namespace, name));
    if (!current) throw notFound(resource, type.group, type.kind, name);
    if (preconditions?.uid && preconditions.uid !== current.metadata.uid)
      throw new StatusError(
        'Conflict',
        `Operation cannot be fulfilled on ${qualified(resource, type.group, name)}: Precondition failed: UID in precondition: ${preconditions.uid}, UID in object meta: ${current.metadata.uid}`,
        { name, group: type.group, kind: resource },
      );
    if (preconditions?.resourceVersion && preconditions.resourceVersion !== current.metadata.resourceVersion) throw conflict(type, name);
    if ((current.metadata.finalizers ?? []).length > 0) {
      if (!current.metadata.deletionTimestamp) {
        current.metadata.deletionTimestamp = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
        current.metadata.resourceVersion = String(++this.revision);
      }
      return clone(current);
    }
    this.store.get(resource)!.delete(key(namespace, name));
    return null;
  }

  /** TokenRequest: a token for the service account, valid until it expires or the account (this uid) is deleted. */
  requestToken(namespace: string, name: string, spec: { expirationSeconds?: unknown; audiences?: unknown }, now = Date.now()): Record<string, unknown> {
    const account = this.get('serviceaccounts', namespace, name);
    const seconds = spec.expirationSeconds ?? 3600;
    if (!Number.isInteger(seconds) || (seconds as number) < MIN_TOKEN_SECONDS || (seconds as number) > MAX_TOKEN_SECONDS)
      throw invalid('TokenRequest', 'authentication.k8s.io', name, [
        {
          field: 'spec.expirationSeconds',
          message: `Invalid value: ${String(seconds)}: ${(seconds as number) < MIN_TOKEN_SECONDS ? 'may not specify a duration less than 10 minutes' : 'may not specify a duration larger than 2^32 seconds'}`,
        },
      ]);
    const granted = Math.min(seconds as number, this.maxTokenSeconds);
    const token = `fake-sa-${randomBytes(24).toString('base64url')}`;
    const expiresAt = now + granted * 1000;
    this.tokens.set(token, { kind: 'bound', namespace, name, uid: account.metadata.uid, expiresAt });
    return {
      kind: 'TokenRequest',
      apiVersion: 'authentication.k8s.io/v1',
      metadata: { name, namespace, creationTimestamp: null },
      spec: { audiences: spec.audiences ?? ['https://kubernetes.default.svc'], expirationSeconds: granted, boundObjectRef: null },
      status: { token, expirationTimestamp: new Date(expiresAt).toISOString().replace(/\.\d+Z$/, 'Z') },
    };
  }

  private checkedMetadata(type: ResourceType, namespace: string | undefined, body: Record<string, unknown>): Record<string, unknown> {
    if (body.kind !== undefined && body.kind !== type.kind)
      throw new StatusError('BadRequest', `the body of the request was in an unknown format: kind ${String(body.kind)} is not ${type.kind}`);
    const metadata = (body.metadata ?? {}) as Record<string, unknown>;
    if (type.namespaced && metadata.namespace !== undefined && metadata.namespace !== namespace)
      throw new StatusError('BadRequest', 'the namespace of the provided object does not match the namespace sent on the request');
    const causes = metadataCauses(metadata, type.nameRule);
    if (type.kind.endsWith('Binding')) causes.push(...bindingCauses(body, type.namespaced));
    if (causes.length > 0) throw invalid(type.kind, type.group, String(metadata.name ?? ''), causes);
    return metadata;
  }

  private checkBinding(
    type: ResourceType,
    _namespace: string | undefined,
    body: Record<string, unknown>,
    bind?: (roleRef: { kind: string; name: string }) => boolean,
  ): void {
    if (!type.kind.endsWith('Binding') || !bind) return;
    const roleRef = body.roleRef as { kind: string; name: string };
    if (!bind(roleRef)) {
      const name = (body.metadata as { name: string }).name;
      throw new StatusError(
        'Forbidden',
        `${qualified(type.resource, type.group, name)} is forbidden: user is attempting to grant RBAC permissions not currently held: it may not bind ${roleRef.kind} "${roleRef.name}" (needs the "bind" verb on ${roleRef.kind === 'Role' ? 'roles' : 'clusterroles'})`,
        { name, group: type.group, kind: type.resource },
      );
    }
  }
}

function conflict(type: ResourceType, name: string): StatusError {
  return new StatusError(
    'Conflict',
    `Operation cannot be fulfilled on ${qualified(type.resource, type.group, name)}: the object has been modified; please apply your changes to the latest version and try again`,
    { name, group: type.group, kind: type.resource },
  );
}
