import type { IncomingMessage, ServerResponse } from 'node:http';
import { ArmError, ArmState, type Assignment, type Instance, type ScheduleRequest } from './arm-state.js';
import { readBody, send, type FakeEntra } from './fake-entra.js';

/**
 * A fake Azure Resource Manager for `Microsoft.Authorization`, over HTTPS, speaking the REST shapes
 * `@azure/arm-authorization` 9 sends and reads:
 *
 * - role assignments (api-version 2022-04-01): PUT / GET / DELETE by name, list at a scope with
 *   `$filter=atScope()` or `principalId eq '…'`, paged with `nextLink`;
 * - role definitions (2022-04-01): list at a scope, `$filter=roleName eq '…'`;
 * - PIM (2020-10-01): role assignment schedule requests (PUT, GET, list) and schedule instances
 *   (list), with the rules in arm-state.ts;
 * - permissions (2022-04-01): the caller's own actions at a scope, as `lapse target check` reads.
 *
 * It checks and refuses what ARM does: a missing or wrong api-version (400), a missing, unknown,
 * expired or wrong-audience bearer token (401), an action the caller's roles do not allow at the
 * scope (403 AuthorizationFailed naming the action), an unknown subscription (404), and ARM's
 * `{ error: { code, message } }` bodies. Injectable: 429 with Retry-After (and `retry-after-ms`),
 * 5xx, stale reads after a delete (the deleted item keeps appearing for N reads), PIM policies.
 *
 * What it cannot prove: Azure's real authorization evaluation (deny assignments, conditions,
 * management-group inheritance), PIM's real policy engine and approval flow, real propagation
 * delays and caches, real throttling limits, and error codes this fake guesses (see
 * docs/connectors/azure-rbac.md, "What the tests prove and what they cannot").
 */
export interface Fault {
  readonly status: number;
  readonly code: string;
  readonly message?: string;
  readonly retryAfterMs?: number;
  /** Which requests it hits, e.g. (method, path) => method === 'DELETE'. Default: all. */
  readonly match?: (method: string, path: string) => boolean;
}

interface CallerGrant {
  readonly scope: string;
  readonly actions: readonly string[];
  readonly notActions: readonly string[];
}

const API_VERSIONS: Readonly<Record<string, readonly string[]>> = {
  roleassignments: ['2022-04-01'],
  roledefinitions: ['2022-04-01'],
  permissions: ['2022-04-01'],
  roleassignmentschedulerequests: ['2020-10-01'],
  roleassignmentscheduleinstances: ['2020-10-01'],
};

const AUTH = '/providers/microsoft.authorization/';

export class FakeArm {
  readonly state = new ArmState();
  readonly subscriptions = new Set<string>();
  private readonly callers = new Map<string, CallerGrant[]>();
  private readonly faults: { fault: Fault; times: number }[] = [];
  private readonly ghosts: { kind: 'assignment' | 'instance'; item: Assignment | Instance; reads: number }[] = [];
  /** Every n-th request answers 429 (0: never); `throttled` counts them. */
  throttleEvery = 0;
  throttleRetryAfterMs = 20;
  throttled = 0;
  requests = 0;
  /** How many reads still show an item after it was deleted (ARM's caches lag). */
  staleReadsAfterDelete = 0;
  pageSize = 100;
  /** Methods and paths seen, for tests that check what was sent. */
  readonly log: string[] = [];
  private base = '';

  constructor(private readonly entra: FakeEntra) {}

  setBaseUrl(base: string): void {
    this.base = base;
  }

  /** Gives an app (the caller) actions at a scope, as a role assignment to it would. */
  allow(appId: string, scope: string, actions: readonly string[], notActions: readonly string[] = []): void {
    this.callers.set(appId, [...(this.callers.get(appId) ?? []), { scope, actions, notActions }]);
  }

  disallowAll(appId: string): void {
    this.callers.delete(appId);
  }

  inject(fault: Fault, times = 1): void {
    this.faults.push({ fault, times });
  }

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = req.method ?? 'GET';
    const url = new URL(req.url ?? '/', this.base);
    this.requests++;
    this.log.push(`${method} ${url.pathname}`);
    try {
      const body = method === 'PUT' ? (JSON.parse((await readBody(req)) || '{}') as Record<string, unknown>) : {};
      const appId = this.authenticate(req);
      this.injected(method, url.pathname, res);
      if (res.writableEnded) return;
      const at = url.pathname.toLowerCase().lastIndexOf(AUTH);
      if (at < 0 || url.pathname.includes('//')) throw new ArmError(400, 'InvalidResourceId', `The resource path '${url.pathname}' is not valid.`);
      const scope = url.pathname.slice(0, at);
      const [kind = '', name, extra] = url.pathname.slice(at + AUTH.length).split('/');
      const type = kind.toLowerCase();
      const versions = API_VERSIONS[type];
      if (!versions || extra !== undefined)
        throw new ArmError(400, 'InvalidResourceType', `The resource type '${kind}' could not be found in the namespace 'Microsoft.Authorization'.`);
      const version = url.searchParams.get('api-version');
      if (!version) throw new ArmError(400, 'MissingApiVersionParameter', 'The api-version query parameter (?api-version=) is required for all requests.');
      if (!versions.includes(version))
        throw new ArmError(400, 'InvalidApiVersionParameter', `The api-version '${version}' is invalid. The supported versions are '${versions.join(',')}'.`);
      const sub = /^\/subscriptions\/([^/]+)/i.exec(scope)?.[1]?.toLowerCase();
      if (!sub || !this.subscriptions.has(sub)) throw new ArmError(404, 'SubscriptionNotFound', `The subscription '${sub ?? scope}' could not be found.`);
      this.authorize(appId, scope, action(type, method));
      this.state.sweep();
      return this.route(type, method, scope, name, url, body, appId, res);
    } catch (error) {
      if (error instanceof ArmError) return send(res, error.status, { error: { code: error.code, message: error.message } });
      return send(res, 500, { error: { code: 'InternalServerError', message: (error as Error).message } });
    }
  }

  private authenticate(req: IncomingMessage): string {
    const header = req.headers.authorization ?? '';
    if (!header.startsWith('Bearer ')) throw new ArmError(401, 'AuthenticationFailed', "Authentication failed. The 'Authorization' header is missing.");
    const info = this.entra.tokenInfo(header.slice(7), this.state.now().getTime());
    if (info === 'expired') throw new ArmError(401, 'ExpiredAuthenticationToken', 'The access token expiry UTC time is earlier than current UTC time.');
    if (!info) throw new ArmError(401, 'InvalidAuthenticationToken', 'The access token is invalid.');
    if (info.audience.replace(/\/$/, '') !== this.base)
      throw new ArmError(401, 'InvalidAuthenticationTokenAudience', `The access token has been obtained for wrong audience or resource '${info.audience}'.`);
    return info.appId;
  }

  private injected(method: string, path: string, res: ServerResponse): void {
    if (this.throttleEvery > 0 && this.requests % this.throttleEvery === 0) {
      this.throttled++;
      return throttle(res, this.throttleRetryAfterMs);
    }
    const index = this.faults.findIndex(({ fault }) => !fault.match || fault.match(method, path));
    if (index < 0) return;
    const entry = this.faults[index]!;
    if (--entry.times <= 0) this.faults.splice(index, 1);
    if (entry.fault.status === 429) {
      this.throttled++;
      return throttle(res, entry.fault.retryAfterMs ?? 20);
    }
    send(res, entry.fault.status, { error: { code: entry.fault.code, message: entry.fault.message ?? `Injected ${entry.fault.code}.` } });
  }

  private authorize(appId: string, scope: string, wanted: string): void {
    const grants = this.grantsAt(appId, scope);
    const allowed = grants.some((g) => g.actions.some((a) => matches(a, wanted)) && !g.notActions.some((a) => matches(a, wanted)));
    if (!allowed) {
      throw new ArmError(
        403,
        'AuthorizationFailed',
        `The client '${appId}' with object id '${appId}' does not have authorization to perform action '${wanted}' over scope '${scope}' or the scope is invalid. If access was recently granted, please refresh your credentials.`,
      );
    }
  }

  private grantsAt(appId: string, scope: string): CallerGrant[] {
    const s = `${scope.toLowerCase()}/`;
    return (this.callers.get(appId) ?? []).filter((g) => s.startsWith(`${g.scope.toLowerCase()}/`));
  }

  private route(
    type: string,
    method: string,
    scope: string,
    name: string | undefined,
    url: URL,
    body: Record<string, unknown>,
    appId: string,
    res: ServerResponse,
  ): void {
    const state = this.state;
    if (type === 'permissions' && method === 'GET' && !name) {
      const value = this.grantsAt(appId, scope).map((g) => ({ actions: g.actions, notActions: g.notActions, dataActions: [], notDataActions: [] }));
      return send(res, 200, { value });
    }
    if (type === 'roledefinitions' && method === 'GET' && !name) {
      const filter = url.searchParams.get('$filter');
      const byName = filter ? /^roleName eq '((?:[^']|'')*)'$/.exec(filter) : null;
      if (filter && !byName) throw new ArmError(400, 'InvalidFilter', `The filter '${filter}' is not supported.`);
      const wanted = byName?.[1]?.replace(/''/g, "'");
      const sub = /^\/subscriptions\/[^/]+/i.exec(scope)![0];
      const value = [...state.roles.entries()]
        .filter(([, roleName]) => wanted === undefined || roleName.toLowerCase() === wanted.toLowerCase())
        .map(([id, roleName]) => ({
          id: `${sub}/providers/Microsoft.Authorization/roleDefinitions/${id}`,
          name: id,
          type: 'Microsoft.Authorization/roleDefinitions',
          properties: { roleName, type: 'BuiltInRole', permissions: [], assignableScopes: ['/'] },
        }));
      return send(res, 200, { value });
    }
    if (type === 'roleassignments') {
      if (method === 'GET' && !name)
        return this.page(
          res,
          url,
          this.visible('assignment', scope, url).map((a) => assignmentJson(a as Assignment)),
        );
      if (!name) throw new ArmError(405, 'MethodNotAllowed', `${method} is not allowed on a list.`);
      if (method === 'PUT') return send(res, 201, assignmentJson(state.createAssignment(scope, name, body, appId)));
      if (method === 'GET') {
        const found = state.findAssignment(scope, name) ?? this.ghost('assignment', scope, name);
        if (!found) throw new ArmError(404, 'RoleAssignmentNotFound', `The role assignment '${name}' is not found.`);
        return send(res, 200, assignmentJson(found));
      }
      if (method === 'DELETE') {
        const gone = this.burying(() => state.deleteAssignment(scope, name));
        if (!gone) return send(res, 204, undefined);
        return send(res, 200, assignmentJson(gone));
      }
    }
    if (type === 'roleassignmentschedulerequests') {
      if (method === 'GET' && !name)
        return this.page(
          res,
          url,
          this.filtered([...state.requests.values()], scope, url).map((r) => requestJson(r as ScheduleRequest)),
        );
      if (!name) throw new ArmError(405, 'MethodNotAllowed', `${method} is not allowed on a list.`);
      if (method === 'GET') {
        const found = state.findRequest(scope, name);
        if (!found) throw new ArmError(404, 'RoleAssignmentScheduleRequestNotFound', `The role assignment schedule request '${name}' is not found.`);
        return send(res, 200, requestJson(found));
      }
      if (method === 'PUT') return send(res, 201, requestJson(this.burying(() => state.submitRequest(scope, name, body, appId))));
    }
    if (type === 'roleassignmentscheduleinstances' && method === 'GET' && !name) {
      return this.page(
        res,
        url,
        this.visible('instance', scope, url).map((i) => instanceJson(i as Instance)),
      );
    }
    throw new ArmError(405, 'MethodNotAllowed', `${method} is not allowed here.`);
  }

  /** Items at the scope as ARM filters them, plus ghosts of deleted ones while reads lag. */
  private visible(kind: 'assignment' | 'instance', scope: string, url: URL): (Assignment | Instance)[] {
    const live = kind === 'assignment' ? [...this.state.assignments.values()] : this.state.instanceView();
    const ghosts = this.ghosts.filter((g) => g.kind === kind && g.reads > 0);
    for (const g of ghosts) g.reads--;
    return this.filtered([...live, ...ghosts.map((g) => g.item)], scope, url) as (Assignment | Instance)[];
  }

  private filtered<T extends { scope: string; properties?: Record<string, unknown>; principalId?: string }>(items: T[], scope: string, url: URL): T[] {
    const filter = url.searchParams.get('$filter');
    const s = scope.toLowerCase();
    const atOrAbove = (item: T) => `${s}/`.startsWith(`${item.scope.toLowerCase()}/`);
    const below = (item: T) => item.scope.toLowerCase().startsWith(`${s}/`);
    if (!filter) return items.filter((i) => atOrAbove(i) || below(i));
    if (filter === 'atScope()') return items.filter(atOrAbove);
    const principal = /^principalId eq '([0-9a-fA-F-]{36})'$/.exec(filter)?.[1]?.toLowerCase();
    if (principal) return items.filter((i) => (atOrAbove(i) || below(i)) && String(i.principalId ?? i.properties?.principalId).toLowerCase() === principal);
    throw new ArmError(400, 'InvalidFilter', `The filter '${filter}' is not supported.`);
  }

  private page(res: ServerResponse, url: URL, all: unknown[]): void {
    const skip = Number(url.searchParams.get('$skipToken') ?? 0);
    const value = all.slice(skip, skip + this.pageSize);
    const next = new URL(url.toString(), this.base);
    next.searchParams.set('$skipToken', String(skip + this.pageSize));
    return send(res, 200, { value, ...(skip + this.pageSize < all.length ? { nextLink: next.toString() } : {}) });
  }

  /** Runs a change; what it removes keeps appearing in reads for a while (stale reads). */
  private burying<T>(change: () => T): T {
    const key = (i: Assignment | Instance) => `${i.scope}/${i.name}`.toLowerCase();
    const instances = this.state.instanceView();
    const assignments = [...this.state.assignments.values()];
    const result = change();
    const liveInstances = new Set(this.state.instanceView().map((i) => i.originRoleAssignmentId.toLowerCase()));
    const liveAssignments = new Set([...this.state.assignments.values()].map(key));
    for (const gone of instances.filter((i) => !liveInstances.has(i.originRoleAssignmentId.toLowerCase()))) this.buryGhost('instance', gone);
    for (const gone of assignments.filter((a) => !liveAssignments.has(key(a)))) this.buryGhost('assignment', gone);
    return result;
  }

  private buryGhost(kind: 'assignment' | 'instance', item: Assignment | Instance): void {
    if (this.staleReadsAfterDelete > 0) this.ghosts.push({ kind, item, reads: this.staleReadsAfterDelete });
  }

  private ghost(kind: 'assignment', scope: string, name: string): Assignment | undefined {
    const g = this.ghosts.find(
      (x) => x.kind === kind && x.reads > 0 && x.item.name.toLowerCase() === name.toLowerCase() && x.item.scope.toLowerCase() === scope.toLowerCase(),
    );
    if (!g) return undefined;
    g.reads--;
    return g.item as Assignment;
  }
}

function throttle(res: ServerResponse, retryAfterMs: number): void {
  send(
    res,
    429,
    { error: { code: 'TooManyRequests', message: 'The request is being throttled.' } },
    { 'retry-after': String(Math.ceil(retryAfterMs / 1000)), 'retry-after-ms': String(retryAfterMs) },
  );
}

function action(type: string, method: string): string {
  const names: Record<string, string> = {
    roleassignments: 'roleAssignments',
    roledefinitions: 'roleDefinitions',
    permissions: 'permissions',
    roleassignmentschedulerequests: 'roleAssignmentScheduleRequests',
    roleassignmentscheduleinstances: 'roleAssignmentScheduleInstances',
  };
  const verb = method === 'GET' ? 'read' : method === 'DELETE' ? 'delete' : 'write';
  return `Microsoft.Authorization/${names[type]}/${verb}`;
}

/** ARM's action wildcards: `*` matches any run of characters, without regard to case. */
function matches(pattern: string, wanted: string): boolean {
  const re = new RegExp(
    `^${pattern
      .split('*')
      .map((p) => p.replace(/[.+?^${}()|[\]\\/]/g, '\\$&'))
      .join('.*')}$`,
    'i',
  );
  return re.test(wanted);
}

function assignmentJson(a: Assignment): unknown {
  return {
    id: `${a.scope}/providers/Microsoft.Authorization/roleAssignments/${a.name}`,
    name: a.name,
    type: 'Microsoft.Authorization/roleAssignments',
    properties: {
      roleDefinitionId: a.roleDefinitionId,
      principalId: a.principalId,
      principalType: a.principalType,
      scope: a.scope,
      description: a.description,
      createdOn: a.createdOn,
      updatedOn: a.createdOn,
      createdBy: a.createdBy,
      updatedBy: a.createdBy,
    },
  };
}

function requestJson(r: ScheduleRequest): unknown {
  return {
    id: `${r.scope}/providers/Microsoft.Authorization/roleAssignmentScheduleRequests/${r.name}`,
    name: r.name,
    type: 'Microsoft.Authorization/roleAssignmentScheduleRequests',
    properties: r.properties,
  };
}

function instanceJson(i: Instance): unknown {
  return {
    id: `${i.scope}/providers/Microsoft.Authorization/roleAssignmentScheduleInstances/${i.name}`,
    name: i.name,
    type: 'Microsoft.Authorization/roleAssignmentScheduleInstances',
    properties: {
      scope: i.scope,
      roleDefinitionId: i.roleDefinitionId,
      principalId: i.principalId,
      principalType: i.principalType,
      roleAssignmentScheduleId: i.scheduleId,
      originRoleAssignmentId: i.originRoleAssignmentId,
      status: 'Provisioned',
      startDateTime: i.startDateTime,
      endDateTime: i.endDateTime,
      assignmentType: 'Assigned',
      memberType: 'Direct',
      createdOn: i.startDateTime,
    },
  };
}
