import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseLabelSelector } from './label-selector.js';
import { openScratchCluster, type ScratchCluster } from './scratch-cluster.js';

/**
 * The fake API server refuses what the real one refuses, with the real Status objects: these
 * tests pin that down, since the connector's tests are only as good as the fake.
 */
let scratch: ScratchCluster;
const RBAC = 'rbac.authorization.k8s.io';
const bindings = (ns: string) => `/apis/${RBAC}/v1/namespaces/${ns}/rolebindings`;
const binding = (name: string, role = 'view', subjects = [{ kind: 'User', apiGroup: RBAC, name: 'oidc:carol' }]) => ({
  metadata: { name },
  roleRef: { apiGroup: RBAC, kind: 'ClusterRole', name: role },
  subjects,
});

beforeAll(async () => {
  scratch = await openScratchCluster();
});
afterAll(async () => {
  await scratch?.close();
});

describe('fake Kubernetes API server', () => {
  it('answers 401 Unauthorized with a Status without a known bearer token', async () => {
    const { status, json } = await scratch.call('GET', bindings('payments'), { token: 'wrong' });
    expect(status).toBe(401);
    expect(json).toEqual({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: 'Unauthorized', reason: 'Unauthorized', code: 401 });
  });

  it('authorizes by RBAC: 403 Forbidden names the user, verb, resource and namespace', async () => {
    const { status, json } = await scratch.call('GET', '/api/v1/namespaces/payments/pods', { user: 'oidc:nobody' });
    expect(status).toBe(403);
    expect(json).toMatchObject({
      reason: 'Forbidden',
      message: 'pods is forbidden: User "oidc:nobody" cannot list resource "pods" in API group "" in the namespace "payments"',
    });
    const refused = await scratch.call('GET', bindings('payments'), { token: 'x', user: 'admin' });
    expect(refused.status).toBe(401);
  });

  it('creates with uid and resourceVersion, refuses duplicates (409 AlreadyExists) and bad names (422 Invalid)', async () => {
    const created = await scratch.call('POST', bindings('payments'), { body: binding('carol-view') });
    expect(created.status).toBe(201);
    expect(created.json).toMatchObject({
      kind: 'RoleBinding',
      metadata: { name: 'carol-view', namespace: 'payments', uid: expect.any(String), resourceVersion: expect.any(String) },
    });
    const again = await scratch.call('POST', bindings('payments'), { body: binding('carol-view') });
    expect(again).toMatchObject({
      status: 409,
      json: { reason: 'AlreadyExists', message: 'rolebindings.rbac.authorization.k8s.io "carol-view" already exists' },
    });
    const bad = await scratch.call('POST', bindings('payments'), { body: { ...binding('a/b'), metadata: { name: 'a/b', labels: { 'bad key!': 'x' } } } });
    expect(bad).toMatchObject({ status: 422, json: { reason: 'Invalid', details: { causes: [{ field: 'metadata.name' }, { field: 'metadata.labels' }] } } });
    const badSa = await scratch.call('POST', '/api/v1/namespaces/payments/serviceaccounts', { body: { metadata: { name: 'Not_DNS' } } });
    expect(badSa).toMatchObject({ status: 422, json: { reason: 'Invalid' } });
    const noNamespace = await scratch.call('POST', bindings('nowhere'), { body: binding('x') });
    expect(noNamespace).toMatchObject({ status: 404, json: { reason: 'NotFound', message: 'namespaces "nowhere" not found' } });
  });

  it('refuses a stale resourceVersion and a failed delete precondition with 409 Conflict', async () => {
    const { json } = await scratch.call('POST', bindings('payments'), { body: binding('dave-view') });
    const current = json as { metadata: { uid: string; resourceVersion: string } };
    const moved = await scratch.call('PUT', `${bindings('payments')}/dave-view`, {
      body: { ...binding('dave-view'), metadata: { name: 'dave-view', resourceVersion: current.metadata.resourceVersion } },
    });
    expect(moved.status).toBe(200);
    const stale = await scratch.call('PUT', `${bindings('payments')}/dave-view`, {
      body: { ...binding('dave-view'), metadata: { name: 'dave-view', resourceVersion: current.metadata.resourceVersion } },
    });
    expect(stale).toMatchObject({ status: 409, json: { reason: 'Conflict', message: expect.stringContaining('the object has been modified') } });
    const roleChange = await scratch.call('PUT', `${bindings('payments')}/dave-view`, {
      body: { ...binding('dave-view', 'edit'), metadata: { name: 'dave-view' } },
    });
    expect(roleChange).toMatchObject({ status: 422, json: { message: expect.stringContaining('cannot change roleRef') } });
    const wrongUid = await scratch.call('DELETE', `${bindings('payments')}/dave-view`, { body: { preconditions: { uid: 'not-it' } } });
    expect(wrongUid).toMatchObject({
      status: 409,
      json: { reason: 'Conflict', message: expect.stringContaining('Precondition failed: UID in precondition: not-it') },
    });
    expect((await scratch.call('DELETE', `${bindings('payments')}/dave-view`, { body: { preconditions: { uid: current.metadata.uid } } })).status).toBe(200);
    expect((await scratch.call('GET', `${bindings('payments')}/dave-view`)).status).toBe(404);
  });

  it('applies the escalation check: binding a role needs bind on it', async () => {
    const token = scratch.server.cluster.addToken({ user: 'binder', groups: [] });
    const rules = [{ apiGroups: [RBAC], resources: ['rolebindings'], verbs: ['create'] }];
    await scratch.call('POST', `/apis/${RBAC}/v1/clusterroles`, { body: { metadata: { name: 'binder' }, rules } });
    await scratch.call('POST', `/apis/${RBAC}/v1/clusterrolebindings`, {
      body: {
        metadata: { name: 'binder' },
        roleRef: { apiGroup: RBAC, kind: 'ClusterRole', name: 'binder' },
        subjects: [{ kind: 'User', apiGroup: RBAC, name: 'binder' }],
      },
    });
    const refused = await scratch.call('POST', bindings('payments'), { token, body: binding('escalate') });
    expect(refused).toMatchObject({
      status: 403,
      json: { reason: 'Forbidden', message: expect.stringContaining('attempting to grant RBAC permissions not currently held') },
    });
    rules.push({ apiGroups: [RBAC], resources: ['clusterroles'], verbs: ['bind'], resourceNames: ['view'] } as (typeof rules)[0]);
    const role = (await scratch.call('GET', `/apis/${RBAC}/v1/clusterroles/binder`)).json as Record<string, unknown>;
    await scratch.call('PUT', `/apis/${RBAC}/v1/clusterroles/binder`, { body: { ...role, rules } });
    expect((await scratch.call('POST', bindings('payments'), { token, body: binding('escalate') })).status).toBe(201);
    expect((await scratch.call('POST', bindings('payments'), { token, body: binding('escalate-edit', 'edit') })).status).toBe(403);
  });

  it('impersonates only with the impersonate verb', async () => {
    const token = scratch.server.cluster.addToken({ user: 'plain', groups: [] });
    const refused = await scratch.call('GET', '/api/v1/namespaces/payments/pods', { token, user: 'admin' });
    expect(refused).toMatchObject({ status: 403, json: { message: expect.stringContaining('cannot impersonate resource "users"') } });
  });

  it('issues TokenRequest tokens of at least 10 minutes that die with their ServiceAccount', async () => {
    const sa = '/api/v1/namespaces/lapse-grants/serviceaccounts';
    await scratch.call('POST', sa, { body: { metadata: { name: 'robot' } } });
    const short = await scratch.call('POST', `${sa}/robot/token`, { body: { spec: { expirationSeconds: 599 } } });
    expect(short).toMatchObject({ status: 422, json: { message: expect.stringContaining('may not specify a duration less than 10 minutes') } });
    const issued = await scratch.call('POST', `${sa}/robot/token`, { body: { spec: { expirationSeconds: 10 ** 9 } } });
    expect(issued.json).toMatchObject({ status: { token: expect.any(String) }, spec: { expirationSeconds: 48 * 3600 } });
    const token = (issued.json as { status: { token: string } }).status.token;
    expect((await scratch.call('GET', '/api/v1/namespaces/payments/pods', { token })).status).toBe(403);
    await scratch.call('DELETE', `${sa}/robot`);
    await scratch.call('POST', sa, { body: { metadata: { name: 'robot' } } });
    expect((await scratch.call('GET', '/api/v1/namespaces/payments/pods', { token })).status).toBe(401);
  });

  it('keeps an object with finalizers, marked, until they are removed', async () => {
    const created = await scratch.call('POST', bindings('payments'), {
      body: { ...binding('held'), metadata: { name: 'held', finalizers: ['example.com/hold'] } },
    });
    expect(created.status).toBe(201);
    expect((await scratch.call('DELETE', `${bindings('payments')}/held`)).status).toBe(202);
    const marked = (await scratch.call('GET', `${bindings('payments')}/held`)).json as { metadata: Record<string, unknown> };
    expect(marked.metadata.deletionTimestamp).toEqual(expect.any(String));
    expect(await scratch.canListPods('payments', { user: 'oidc:carol' })).toBe(true);
    await scratch.call('PUT', `${bindings('payments')}/held`, { body: { ...marked, metadata: { ...marked.metadata, finalizers: [] } } });
    expect((await scratch.call('GET', `${bindings('payments')}/held`)).status).toBe(404);
  });

  it('pages lists with limit/continue and serves injected stale lists', async () => {
    for (const name of ['page-a', 'page-b', 'page-c']) await scratch.call('POST', bindings('default'), { body: binding(name) });
    const first = (await scratch.call('GET', `${bindings('default')}?limit=2`)).json as { items: unknown[]; metadata: { continue: string } };
    expect(first.items).toHaveLength(2);
    const rest = (await scratch.call('GET', `${bindings('default')}?limit=2&continue=${first.metadata.continue}`)).json as { items: unknown[] };
    expect(rest.items).toHaveLength(1);
    scratch.server.faults.staleListsNext(1);
    await scratch.call('DELETE', `${bindings('default')}/page-a`);
    const stale = (await scratch.call('GET', bindings('default'))).json as { items: { metadata: { name: string } }[] };
    expect(stale.items.map((i) => i.metadata.name)).toContain('page-a');
    const fresh = (await scratch.call('GET', bindings('default'))).json as { items: { metadata: { name: string } }[] };
    expect(fresh.items.map((i) => i.metadata.name)).not.toContain('page-a');
  });

  it('injects 429 with Retry-After and 5xx as Status objects', async () => {
    scratch.server.faults.throttleNext(1, 2);
    const throttled = await scratch.call('GET', bindings('default'));
    expect(throttled).toMatchObject({ status: 429, json: { reason: 'TooManyRequests', details: { retryAfterSeconds: 2 } } });
    scratch.server.faults.failNext(1, 500);
    expect(await scratch.call('GET', bindings('default'))).toMatchObject({ status: 500, json: { reason: 'InternalError' } });
    expect((await scratch.call('GET', bindings('default'))).status).toBe(200);
  });
});

describe('label selectors', () => {
  it('parses equality, set-based and existence requirements, and refuses nonsense', () => {
    const labels = { 'app.kubernetes.io/managed-by': 'lapse', tier: 'gold' };
    expect(parseLabelSelector('app.kubernetes.io/managed-by=lapse,tier==gold')(labels)).toBe(true);
    expect(parseLabelSelector('app.kubernetes.io/managed-by!=lapse')(labels)).toBe(false);
    expect(parseLabelSelector('app.kubernetes.io/managed-by!=lapse')({})).toBe(true);
    expect(parseLabelSelector('tier in (silver, gold),!missing')(labels)).toBe(true);
    expect(parseLabelSelector('tier notin (gold)')(labels)).toBe(false);
    expect(parseLabelSelector('tier')({})).toBe(false);
    expect(() => parseLabelSelector('tier=(x')).toThrow();
    expect(() => parseLabelSelector('bad key=x')).toThrow();
  });
});
