/**
 * A fake Kubernetes API server for the kubernetes connector's tests and benchmark: HTTPS (or HTTP)
 * speaking the API's JSON for exactly the resources the connector uses —
 * rbac.authorization.k8s.io/v1 roles, rolebindings, clusterroles, clusterrolebindings; v1
 * serviceaccounts and serviceaccounts/{name}/token (TokenRequest); authorization.k8s.io/v1
 * selfsubjectaccessreviews; /version — plus `GET …/pods` (always empty) as a resource a requester
 * can be granted, so a test can try the access itself.
 *
 * What it checks and refuses, as the real server does: bearer tokens (401 Unauthorized otherwise),
 * impersonation headers (needs the `impersonate` verb), RBAC authorization of every request from
 * the stored roles and bindings (403 Forbidden), the escalation check on binding create/update
 * (needs `bind` on the role), names and labels (422 Invalid), duplicate names (409 AlreadyExists),
 * stale resourceVersions and failed delete preconditions (409 Conflict), unknown namespaces and
 * objects (404 NotFound), TokenRequest bounds (600 s to 2^32 s, capped by maxTokenSeconds),
 * finalizers (delete only marks the object), label selectors and limit/continue paging. Failures
 * are `Status` objects with the real reasons.
 *
 * Injectable faults (`faults`): 429 TooManyRequests with Retry-After, 5xx, 409 conflicts from a
 * concurrent writer, list reads served from an older snapshot, and per-request latency.
 *
 * What it cannot prove: the real server's escalation check also lets a caller bind a role whose
 * permissions it holds itself (the fake only honours `bind`); tokens here are opaque strings, not
 * signed JWTs, and a deleted service account's tokens stop at once (the real token authenticator
 * reads service accounts from a cache, so that takes a moment); there is no watch, no
 * aggregation, no admission webhooks, no protobuf, no API Priority and Fairness queueing (a 429
 * comes only when injected), and none of the kubelet's streaming (exec, attach, port-forward).
 */
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { FakeCluster, RESOURCES, type KubeObject } from './fake-cluster.js';
import { StatusError } from './fake-status.js';
import { forbiddenMessage, type Attributes, type Identity } from './fake-rbac.js';

export interface FakeFaults {
  /** The next n requests get 429 TooManyRequests with `Retry-After: retryAfterSeconds`. */
  throttleNext(n: number, retryAfterSeconds?: number): void;
  /** Every k-th request (0 = off) gets 429, as a busy server's priority-and-fairness queue would answer. */
  throttleEvery(k: number, retryAfterSeconds?: number): void;
  /** The next n requests get this 5xx status (500 InternalError or 503 ServiceUnavailable). */
  failNext(n: number, code?: 500 | 503): void;
  /** The next n updates (or deletes with preconditions) find the object changed by someone else first: 409 Conflict. */
  conflictNext(n: number): void;
  /** The next n list requests are answered from the state as it is now (a stale cache), however it changes meanwhile. */
  staleListsNext(n: number): void;
  /** Milliseconds added to every request. */
  latencyMs: number;
}

export interface FakeStats {
  requests: number;
  throttled: number;
  failed: number;
  conflicts: number;
  staleLists: number;
}

export interface FakeApiServer {
  readonly url: string;
  readonly cluster: FakeCluster;
  readonly faults: FakeFaults;
  readonly stats: FakeStats;
  /** Method, path and caller of every request, oldest first (the last 10,000). */
  readonly log: { method: string; path: string; user: string }[];
  close(): Promise<void>;
}

const RBAC = 'rbac.authorization.k8s.io';
const ROUTE = /^\/(?:api\/v1|apis\/(rbac\.authorization\.k8s\.io)\/v1)(?:\/namespaces\/([^/]+))?\/([a-z]+)(?:\/([^/]+))?(?:\/([a-z]+))?$/;
const MAX_BODY = 1024 * 1024;

export async function startFakeApiServer(options: { cluster?: FakeCluster; tls?: { key: string; cert: string } } = {}): Promise<FakeApiServer> {
  const cluster = options.cluster ?? new FakeCluster();
  const stats: FakeStats = { requests: 0, throttled: 0, failed: 0, conflicts: 0, staleLists: 0 };
  const state = {
    throttle: 0,
    throttleEvery: 0,
    retryAfter: 1,
    fail: 0,
    failCode: 503 as 500 | 503,
    conflicts: 0,
    staleLists: 0,
    stale: new Map<string, KubeObject[]>(),
  };
  const faults: FakeFaults = {
    throttleNext: (n, retryAfterSeconds = 1) => Object.assign(state, { throttle: n, retryAfter: retryAfterSeconds }),
    throttleEvery: (k, retryAfterSeconds = 1) => Object.assign(state, { throttleEvery: k, retryAfter: retryAfterSeconds }),
    failNext: (n, code = 503) => Object.assign(state, { fail: n, failCode: code }),
    conflictNext: (n) => void (state.conflicts = n),
    staleListsNext: (n) => Object.assign(state, { staleLists: n, stale: cluster.snapshot() }),
    latencyMs: 0,
  };
  const log: FakeApiServer['log'] = [];
  const pages = new Map<string, KubeObject[]>();

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'https://fake');
    stats.requests++;
    const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    const caller = bearer ? cluster.authenticate(bearer) : undefined;
    log.push({ method: req.method ?? '', path: url.pathname, user: caller?.user ?? '' });
    if (log.length > 10_000) log.shift();
    if (faults.latencyMs > 0) await sleep(faults.latencyMs);
    if (url.pathname === '/version' && req.method === 'GET')
      return send(res, 200, { major: '1', minor: '31', gitVersion: 'v1.31.0-lapse-fake', platform: 'linux/amd64' });
    if (!caller) throw new StatusError('Unauthorized', 'Unauthorized');
    if (state.throttle > 0 || (state.throttleEvery > 0 && stats.requests % state.throttleEvery === 0)) {
      if (state.throttle > 0) state.throttle--;
      stats.throttled++;
      res.setHeader('Retry-After', String(state.retryAfter));
      throw new StatusError('TooManyRequests', 'Too many requests, please try again later.', { retryAfterSeconds: state.retryAfter });
    }
    if (state.fail > 0) {
      state.fail--;
      stats.failed++;
      throw state.failCode === 500
        ? new StatusError('InternalError', 'Internal error occurred: etcdserver: request timed out')
        : new StatusError('ServiceUnavailable', 'the server is currently unable to handle the request');
    }
    const who = impersonated(cluster, caller, req);
    const body = await readJson(req);
    if (url.pathname === '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews' && req.method === 'POST')
      return send(res, 201, accessReview(cluster, who, body));
    const match = ROUTE.exec(url.pathname);
    if (!match) throw new StatusError('NotFound', 'the server could not find the requested resource');
    const [, group = '', namespace, resource = '', name, sub] = match;
    const ns = namespace === undefined ? undefined : decodeURIComponent(namespace);
    const objectName = name === undefined ? undefined : decodeURIComponent(name);

    if (resource === 'pods' && group === '' && req.method === 'GET' && objectName === undefined) {
      authorizeOrThrow(cluster, who, { verb: 'list', group: '', resource: 'pods', namespace: ns ?? '', name: '' });
      return send(res, 200, { kind: 'PodList', apiVersion: 'v1', metadata: { resourceVersion: '1' }, items: [] });
    }
    const type = RESOURCES[resource];
    if (
      !type ||
      type.group !== group ||
      (type.namespaced && ns === undefined && (req.method !== 'GET' || objectName !== undefined)) ||
      (!type.namespaced && ns !== undefined)
    )
      throw new StatusError('NotFound', 'the server could not find the requested resource');

    if (sub !== undefined) {
      if (resource !== 'serviceaccounts' || sub !== 'token' || req.method !== 'POST')
        throw new StatusError('NotFound', 'the server could not find the requested resource');
      authorizeOrThrow(cluster, who, { verb: 'create', group: '', resource: 'serviceaccounts/token', namespace: ns!, name: objectName! });
      const spec = ((body as { spec?: Record<string, unknown> } | undefined)?.spec ?? {}) as Record<string, unknown>;
      return send(res, 201, cluster.requestToken(ns!, objectName!, spec));
    }
    const verb = { GET: objectName === undefined ? 'list' : 'get', POST: 'create', PUT: 'update', DELETE: 'delete' }[req.method ?? ''];
    if (!verb || (verb === 'create') !== (objectName === undefined && req.method === 'POST') || (req.method === 'DELETE' && objectName === undefined))
      throw new StatusError('MethodNotAllowed', `the server does not allow this method on the requested resource`);
    const attributes = { verb, group, resource, namespace: ns ?? '', name: objectName ?? '' };
    authorizeOrThrow(cluster, who, attributes);
    const bind = (roleRef: { kind: string; name: string }) =>
      cluster.allowed(who, {
        verb: 'bind',
        group: RBAC,
        resource: roleRef.kind === 'Role' ? 'roles' : 'clusterroles',
        namespace: ns ?? '',
        name: roleRef.name,
      });
    const touchFirst = () => {
      if (state.conflicts <= 0) return;
      state.conflicts--;
      stats.conflicts++;
      // A concurrent writer changes the object first: its resourceVersion moves on.
      const current = cluster.get(resource, ns, objectName!);
      current.metadata.annotations = { ...current.metadata.annotations, 'fake.lapse.dev/touched': String(stats.requests) };
      delete (current.metadata as { resourceVersion?: string }).resourceVersion;
      cluster.update(resource, ns, objectName!, current as unknown as Record<string, unknown>);
    };
    switch (verb) {
      case 'get':
        return send(res, 200, cluster.get(resource, ns, objectName!));
      case 'list':
        return send(res, 200, list(resource, ns, url.searchParams));
      case 'create':
        return send(res, 201, cluster.create(resource, ns, requireBody(body), bind));
      case 'update': {
        const update = requireBody(body);
        if ((update.metadata as { resourceVersion?: string } | undefined)?.resourceVersion) touchFirst();
        return send(res, 200, cluster.update(resource, ns, objectName!, update, bind));
      }
      default: {
        const preconditions = (body as { preconditions?: { uid?: string; resourceVersion?: string } } | undefined)?.preconditions;
        if (preconditions && cluster.has(resource, ns, objectName!)) touchFirst();
        const pending = cluster.delete(resource, ns, objectName!, preconditions);
        if (pending) return send(res, 202, pending);
        return send(res, 200, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', details: { name: objectName, group, kind: resource } });
      }
    }
  }

  function list(resource: string, namespace: string | undefined, query: URLSearchParams): Record<string, unknown> {
    const type = RESOURCES[resource]!;
    if (query.get('watch') === 'true' || query.get('watch') === '1') throw new StatusError('BadRequest', 'the fake API server does not serve watches');
    const continueToken = query.get('continue');
    let items: KubeObject[];
    if (continueToken) {
      const rest = pages.get(continueToken);
      if (!rest)
        throw new StatusError(
          'BadRequest',
          'The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.',
        );
      pages.delete(continueToken);
      items = rest;
    } else {
      let from: KubeObject[] | undefined;
      if (state.staleLists > 0) {
        state.staleLists--;
        stats.staleLists++;
        from = state.stale.get(resource);
      }
      items = cluster.list(resource, namespace, query.get('labelSelector') ?? '', from);
    }
    const limit = Number(query.get('limit') ?? 0);
    const metadata: Record<string, unknown> = { resourceVersion: String(stats.requests) };
    if (limit > 0 && items.length > limit) {
      const token = `page-${stats.requests}-${pages.size}`;
      pages.set(token, items.slice(limit));
      metadata.continue = token;
      metadata.remainingItemCount = items.length - limit;
      items = items.slice(0, limit);
    }
    return {
      kind: `${type.kind}List`,
      apiVersion: type.group ? `${type.group}/v1` : 'v1',
      metadata,
      items: items.map(({ apiVersion: _a, kind: _k, ...rest }) => rest),
    };
  }

  const listener = (req: IncomingMessage, res: ServerResponse) => {
    handle(req, res).catch((error: unknown) => {
      const status = error instanceof StatusError ? error : new StatusError('InternalError', `fake: ${(error as Error).message}`);
      send(res, status.code, status.toStatus());
    });
  };
  const server: Server = options.tls ? createHttpsServer({ key: options.tls.key, cert: options.tls.cert }, listener) : createHttpServer(listener);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    url: `${options.tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    cluster,
    faults,
    stats,
    log,
    async close() {
      server.closeAllConnections();
      server.close();
      await once(server, 'close').catch(() => undefined);
    },
  };
}

function send(res: ServerResponse, code: number, body: unknown): void {
  if (res.headersSent) return;
  res.writeHead(code, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

function authorizeOrThrow(cluster: FakeCluster, who: Identity, attributes: Attributes): void {
  if (!cluster.allowed(who, attributes))
    throw new StatusError('Forbidden', forbiddenMessage(who, attributes), { name: attributes.name, group: attributes.group, kind: attributes.resource });
}

/** Impersonate-User / Impersonate-Group, each checked against the caller's `impersonate` permission. */
function impersonated(cluster: FakeCluster, caller: Identity, req: IncomingMessage): Identity {
  const user = req.headersDistinct['impersonate-user']?.[0];
  const groups = req.headersDistinct['impersonate-group'] ?? [];
  if (user === undefined) {
    if (groups.length > 0) throw new StatusError('BadRequest', 'requested impersonation of groups without impersonating a user');
    return caller;
  }
  const sa = /^system:serviceaccount:([^:]+):([^:]+)$/.exec(user);
  const checks: Attributes[] = [
    sa
      ? { verb: 'impersonate', group: '', resource: 'serviceaccounts', namespace: sa[1]!, name: sa[2]! }
      : { verb: 'impersonate', group: '', resource: 'users', namespace: '', name: user },
    ...groups.map((g) => ({ verb: 'impersonate', group: '', resource: 'groups', namespace: '', name: g })),
  ];
  for (const check of checks) authorizeOrThrow(cluster, caller, check);
  return { user, groups: [...groups, 'system:authenticated'] };
}

function accessReview(cluster: FakeCluster, who: Identity, body: unknown): Record<string, unknown> {
  const spec = (body as { spec?: { resourceAttributes?: Record<string, string> } } | undefined)?.spec;
  const a = spec?.resourceAttributes;
  if (!a || !a.verb) throw new StatusError('Invalid', 'SelfSubjectAccessReview.authorization.k8s.io "" is invalid: spec.resourceAttributes: Required value');
  const attributes = {
    verb: a.verb,
    group: a.group ?? '',
    resource: a.subresource ? `${a.resource ?? ''}/${a.subresource}` : (a.resource ?? ''),
    namespace: a.namespace ?? '',
    name: a.name ?? '',
  };
  const allowed = cluster.allowed(who, attributes);
  return {
    kind: 'SelfSubjectAccessReview',
    apiVersion: 'authorization.k8s.io/v1',
    metadata: { creationTimestamp: null },
    spec,
    status: allowed ? { allowed: true, reason: 'RBAC: allowed by the fake' } : { allowed: false },
  };
}

function requireBody(body: unknown): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new StatusError('BadRequest', 'the body of the request was in an unknown format');
  return body as Record<string, unknown>;
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY) throw new StatusError('BadRequest', 'request entity too large');
    chunks.push(chunk);
  }
  if (size === 0) return undefined;
  const type = req.headers['content-type'] ?? '';
  if (!type.startsWith('application/json')) throw new StatusError('BadRequest', `the fake API server speaks JSON only, not "${type}"`);
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new StatusError('BadRequest', 'the body of the request was in an unknown format');
  }
}
