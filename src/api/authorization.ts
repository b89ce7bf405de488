import type { FastifyPluginAsync, FastifyRequest, RouteOptions } from 'fastify';
import { sessionCookieName, type AuthService, type TokenScope } from '../auth/index.js';
import { canSeeGrant, canSeeRequest, holdsRole, type Role } from '../domain/authorization.js';
import { isLapseError, LapseError } from '../domain/errors.js';
import type { Principal } from '../domain/principal.js';
import type { Engine } from '../engine/index.js';
import { checkCredential, completeAuthentication, type Caller } from './authenticate.js';
import { clearSessionCookie } from './session-cookie.js';
import { rememberedCaller } from './step-up.js';

/**
 * What a route declares about who may call it (`config: { auth: ... }` on every route; the hook
 * installed by `enforceRouteAuthorization` applies it before the handler runs). The rules
 * themselves are in src/domain/authorization.ts; docs/authorization.md lists every route's.
 */
export type RouteAuth =
  /** No credential needed (sign-in, health, the portal's files, what sshd hosts fetch). */
  | { readonly public: string }
  /** A credential with this scope (`admin` on a credential stands for every scope), and optionally a role. */
  | { readonly scope: TokenScope; readonly role?: Role; readonly refused?: RoleRefusal; readonly optional?: boolean }
  /** A SCIM bearer token and nothing else (the SCIM routes check it themselves: src/api/routes/scim.ts). */
  | { readonly scim: string; readonly optional?: never };
// NB. `optional`: a visitor who presents no credential at all gets no caller (and is not audited);
// one who presents a credential that fails is refused as anywhere else, and a dead session cookie
// is dropped so the next page load asks as a visitor (the session probe, GET /api/v1/auth/status).

/** How a caller without the route's role is refused: the audit action, message and hint the route documents. */
export interface RoleRefusal {
  /** Default `authz.refused`. */
  readonly action?: string;
  readonly message: string | ((who: Principal) => string);
  readonly hint: string;
}

declare module 'fastify' {
  interface FastifyContextConfig {
    auth?: RouteAuth;
  }
}

/** Credentials checked before validation, completed (step-up, role) after it. */
const credentials = new WeakMap<FastifyRequest, Caller>();

/** The caller of a route that declares a scope. */
export function callerOf(request: FastifyRequest): Caller {
  const caller = rememberedCaller(request);
  if (!caller) throw new Error(`route ${routeOf(request)} declares no scope, so it has no caller`);
  return caller;
}

/** The caller of a route whose scope is `optional`: undefined for a visitor without credentials. */
export function callerIfAny(request: FastifyRequest): Caller | undefined {
  return rememberedCaller(request);
}

/** The route a request came in on, as registered (no ids, no query). */
export function routeOf(request: FastifyRequest): string {
  return request.routeOptions.url ?? request.url.split('?')[0] ?? '';
}

/**
 * Every refusal of an authenticated caller, audited the same way: the action (default
 * `authz.refused`), who, what (subject), the route and the reason; then the error.
 */
export async function refuse(
  engine: Engine,
  refusal: {
    readonly caller: Principal;
    readonly route: string;
    readonly reason: string;
    readonly action?: string;
    readonly subject?: string;
    readonly data?: Record<string, unknown>;
  },
  error: LapseError,
): Promise<never> {
  await engine.recordSecurityEvent({
    action: refusal.action ?? 'authz.refused',
    actor: refusal.caller.id,
    ...(refusal.subject ? { subject: refusal.subject } : {}),
    data: { route: refusal.route, reason: refusal.reason, code: error.code, ...refusal.data },
  });
  throw error;
}

/** Refuses a caller whose role does not allow the action (403, audited). */
export function refuseRole(engine: Engine, caller: Principal, route: string, message: string, hint: string, action?: string): Promise<never> {
  return refuse(engine, { caller, route, reason: message, ...(action ? { action } : {}) }, new LapseError('forbidden', message, { hint }));
}

/**
 * Refuses an object the caller may not see as "not found" (so ids cannot be probed), and records
 * the attempt when the object exists: looking at someone else's request or grant is worth knowing.
 */
export async function refuseUnseen(engine: Engine, caller: Principal, kind: 'request' | 'grant', id: string, exists: boolean, route: string): Promise<never> {
  const error = new LapseError('not_found', `there is no ${kind} ${id}`, { where: id });
  if (!exists) throw error;
  return refuse(engine, { caller, route, reason: `not allowed to see this ${kind}`, subject: id }, error);
}

/** Loads a request the caller may see; anything else is "not found". */
export async function visibleRequest(engine: Engine, request: FastifyRequest, requestId: string) {
  const caller = callerOf(request).principal;
  const found = await engine.read.request(requestId);
  if (!found || !canSeeRequest(engine.config.roles, caller, found))
    return refuseUnseen(engine, caller, 'request', requestId, found !== undefined, routeOf(request));
  return found;
}

/** Loads a grant the caller may see (`rule`: default, the holder or a reader of everything); anything else is "not found". */
export async function visibleGrant(
  engine: Engine,
  request: FastifyRequest,
  grantId: string,
  rule: (caller: Principal, grant: { principalId: string }) => boolean = (caller, grant) => canSeeGrant(engine.config.roles, caller, grant),
) {
  const caller = callerOf(request).principal;
  const grant = await engine.read.grant(grantId);
  if (!grant || !rule(caller, grant)) return refuseUnseen(engine, caller, 'grant', grantId, grant !== undefined, routeOf(request));
  return grant;
}

/** A route as registered, with what it declares (for docs/authorization.md and its test). */
export interface DeclaredRoute {
  readonly method: string;
  readonly url: string;
  readonly auth: RouteAuth | undefined;
}

const routeTables = new WeakMap<object, readonly DeclaredRoute[]>();

/** Every route of a server built with routeAuthorization, with its declared rule. */
export function declaredRoutes(app: object): readonly DeclaredRoute[] {
  return routeTables.get(app) ?? [];
}

/**
 * Applies every route's declared rule (hooks for the whole server) and refuses at start-up an API
 * route that declares none: a route without a rule must not be reachable by accident.
 */
export function routeAuthorization(engine: Engine, auth: AuthService): FastifyPluginAsync {
  const plugin: FastifyPluginAsync = async (app) => {
    const table: DeclaredRoute[] = [];
    routeTables.set(app, table);
    app.addHook('onRoute', (route: RouteOptions) => {
      for (const method of [route.method].flat()) table.push({ method, url: route.url, auth: route.config?.auth });
      if (route.url.startsWith('/api/v1/') && route.config?.auth === undefined) {
        throw new Error(`route ${route.method} ${route.url} declares no authorization (config.auth): see src/api/authorization.ts`);
      }
    });
    // Who is calling, before the input is validated: an unauthenticated call is a 401 whatever it sent.
    app.addHook('preValidation', async (request, reply) => {
      const rule = request.routeOptions.config.auth;
      if (!rule || 'public' in rule || 'scim' in rule) return;
      const presented = request.headers.authorization !== undefined || Boolean(request.cookies?.[sessionCookieName(engine.config.auth)]);
      if (rule.optional && !presented) return;
      try {
        credentials.set(request, await checkCredential(engine, auth, request, rule.scope));
      } catch (error) {
        if (rule.optional && isLapseError(error, 'unauthenticated') && request.headers.authorization === undefined)
          clearSessionCookie(reply, engine.config.auth);
        throw error;
      }
    });
    // Once the input is valid: a one-request step-up (so no code is spent on a bad request), then the role.
    app.addHook('preHandler', async (request) => {
      const rule = request.routeOptions.config.auth;
      const credential = credentials.get(request);
      if (!rule || 'public' in rule || 'scim' in rule || !credential) return;
      // Remembers the caller for callerOf (and for step-up guidance on errors).
      const caller = await completeAuthentication(engine, auth, request, credential);
      if (rule.role && !holdsRole(engine.config.roles, caller.principal, rule.role)) {
        const refused = rule.refused ?? {
          message: rule.role === 'admin' ? 'only admins may do this' : 'only admins and auditors may do this',
          hint: 'Roles come from roles.admins and roles.auditors in the config.',
        };
        const message = typeof refused.message === 'function' ? refused.message(caller.principal) : refused.message;
        await refuseRole(engine, caller.principal, routeOf(request), message, refused.hint, refused.action);
      }
    });
  };
  // NB. As fastify-plugin does: the hooks then apply to every route of the server, not only this plugin's.
  Object.assign(plugin, { [Symbol.for('skip-override')]: true });
  return plugin;
}
