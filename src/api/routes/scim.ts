import type { FastifyError, FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { AuthService } from '../../auth/index.js';
import { isLapseError, LapseError } from '../../domain/errors.js';
import {
  applyGroupPatch,
  applyUserPatch,
  parseGroupResource,
  parsePatch,
  parseScimFilter,
  parseUserResource,
  SCIM_GROUP_SCHEMA,
  SCIM_LIMITS,
  SCIM_USER_SCHEMA,
  scimProblem,
} from '../../domain/scim.js';
import type { DirectoryCaller, DirectoryGroupRow, DirectoryPersonRow, Engine } from '../../engine/index.js';
import { publicBaseUrl } from '../public-url.js';
import { SCIM_RESOURCE_TYPES, SCIM_SCHEMAS, SCIM_SERVICE_PROVIDER_CONFIG } from './scim-discovery.js';

/**
 * SCIM 2.0 (RFC 7644) for identity providers (Okta, Entra ID) to push people and groups:
 * `/scim/v2/Users`, `/scim/v2/Groups`, and the discovery documents. Speaks `application/scim+json`
 * and answers errors in SCIM's shape, not Lapse's problem documents. Only a SCIM token (`lapse admin
 * scim-token create`) is accepted here, and a SCIM token is accepted nowhere else. What each call
 * changes is an engine use-case (src/engine/directory.ts): deactivating a person deprovisions them.
 */
const SCIM_ERROR_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:Error';
const LIST_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:ListResponse';
const CONTENT_TYPE = 'application/scim+json; charset=utf-8';
const RULE = { scim: 'a SCIM token (lapse admin scim-token create); nothing else' } as const;

const callers = new WeakMap<FastifyRequest, DirectoryCaller>();

function callerOf(request: FastifyRequest): DirectoryCaller {
  const caller = callers.get(request);
  if (!caller) throw new Error('SCIM route without a SCIM caller');
  return caller;
}

function sendScimError(reply: FastifyReply, status: number, detail: string, scimType?: string): FastifyReply {
  return reply
    .code(status)
    .header('content-type', CONTENT_TYPE)
    .send({ schemas: [SCIM_ERROR_SCHEMA], status: String(status), ...(scimType ? { scimType } : {}), detail: detail.slice(0, 2000) });
}

function scimErrorHandler(error: FastifyError, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  if (isLapseError(error)) {
    const scimType = typeof error.details.scimType === 'string' ? error.details.scimType : undefined;
    return sendScimError(reply, error.httpStatus, error.describe(), scimType);
  }
  if (error.statusCode === 413) return sendScimError(reply, 413, 'the request body is too large (at most 1 MiB)', 'tooMany');
  if (error.statusCode === 415) return sendScimError(reply, 415, 'send application/scim+json or application/json');
  if (error.statusCode && error.statusCode >= 400 && error.statusCode < 500) return sendScimError(reply, error.statusCode, error.message, 'invalidSyntax');
  request.log.error({ err: error }, 'SCIM request failed');
  return sendScimError(reply, 500, 'internal error; see the server log');
}

function baseUrl(engine: Engine, request: FastifyRequest): string {
  try {
    return `${publicBaseUrl(engine.config.auth, request).replace(/\/$/, '')}/scim/v2`;
  } catch {
    // NB. Without auth.publicUrl on a non-loopback address, locations are relative references.
    return '/scim/v2';
  }
}

function userResource(base: string, person: DirectoryPersonRow) {
  const at = person.createdAt.toISOString();
  return {
    schemas: [SCIM_USER_SCHEMA],
    id: person.id,
    ...(person.directoryId !== null ? { externalId: person.directoryId } : {}),
    userName: person.name,
    ...(person.displayName !== null ? { displayName: person.displayName, name: { formatted: person.displayName } } : {}),
    active: person.active,
    ...(person.email !== null ? { emails: [{ value: person.email, primary: true, type: 'work' }] } : {}),
    groups: person.groups.map((g) => ({ value: g.id, display: g.displayName, $ref: `${base}/Groups/${g.id}` })),
    meta: { resourceType: 'User', created: at, lastModified: at, location: `${base}/Users/${person.id}` },
  };
}

function groupResource(base: string, group: DirectoryGroupRow, withMembers: boolean) {
  return {
    schemas: [SCIM_GROUP_SCHEMA],
    id: group.id,
    displayName: group.displayName,
    ...(group.directoryId !== null ? { externalId: group.directoryId } : {}),
    ...(withMembers ? { members: group.members.map((m) => ({ value: m.id, display: m.name, $ref: `${base}/Users/${m.id}` })) } : {}),
    meta: {
      resourceType: 'Group',
      created: group.createdAt.toISOString(),
      lastModified: group.updatedAt.toISOString(),
      location: `${base}/Groups/${group.id}`,
    },
  };
}

/** startIndex (1-based) and count (0 to 200; more is served as 200, as RFC 7644 §3.4.2.4 allows). */
function pageOf(query: Record<string, unknown>): { offset: number; limit: number; startIndex: number } {
  const integer = (name: string, fallback: number): number => {
    const raw = query[name];
    if (raw === undefined || raw === '') return fallback;
    if (typeof raw !== 'string' || !/^-?\d{1,9}$/.test(raw)) throw scimProblem('invalidValue', `${name} must be an integer`, name);
    return Number(raw);
  };
  const startIndex = Math.max(1, integer('startIndex', 1));
  const count = Math.min(SCIM_LIMITS.pageSize, Math.max(0, integer('count', 100)));
  return { offset: startIndex - 1, limit: count, startIndex };
}

function single(query: Record<string, unknown>, name: string): string | undefined {
  const value = query[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw scimProblem('invalidValue', `give ${name} once`, name);
  return value;
}

function listResponse(total: number, startIndex: number, resources: unknown[]) {
  return { schemas: [LIST_SCHEMA], totalResults: total, startIndex, itemsPerPage: resources.length, Resources: resources };
}

/** Clauses on one attribute must agree; a contradiction matches nothing. */
function mergeClauses(clauses: readonly { attribute: string; value: string }[]): Record<string, string> | null {
  const merged: Record<string, string> = {};
  for (const { attribute, value } of clauses) {
    if (merged[attribute] !== undefined && merged[attribute] !== value) return null;
    merged[attribute] = value;
  }
  return merged;
}

const idParam = (request: FastifyRequest): string => {
  const id = (request.params as { id?: unknown }).id;
  if (typeof id !== 'string' || id.length === 0 || id.length > 64) throw new LapseError('not_found', 'there is no such resource', { scimType: 'noTarget' });
  return id;
};

export function scimRoutes(engine: Engine, auth: AuthService): FastifyPluginAsync {
  return async (app: FastifyInstance) => {
    app.addContentTypeParser(['application/scim+json'], { parseAs: 'string' }, app.getDefaultJsonParser('error', 'error'));
    app.setErrorHandler(scimErrorHandler);

    // The SCIM token, before the body is read: anything else (an API token, a session) is refused.
    app.addHook('onRequest', async (request, reply) => {
      const header = request.headers.authorization;
      const presented = header?.startsWith('Bearer ') ? header.slice(7).trim() : '';
      const token = presented ? await auth.authenticateScimToken(presented) : null;
      if (!token) {
        await engine.recordSecurityEvent({
          action: 'auth.refused',
          actor: 'anonymous',
          data: { route: request.routeOptions.url ?? '', reason: header === undefined ? 'no SCIM token' : 'invalid SCIM token', ip: request.ip },
        });
        reply.header('www-authenticate', 'Bearer realm="lapse-scim"');
        return sendScimError(reply, 401, 'a valid SCIM bearer token is required (lapse admin scim-token create)');
      }
      callers.set(request, { directory: 'scim', actor: `scim:${token.name}` });
    });

    const send = (reply: FastifyReply, status: number, body: unknown) => reply.code(status).header('content-type', CONTENT_TYPE).send(body);
    const route = { schema: { hide: true }, config: { auth: RULE } } as const;

    // Discovery (RFC 7644 §4)
    app.get('/scim/v2/ServiceProviderConfig', route, async (_request, reply) => send(reply, 200, SCIM_SERVICE_PROVIDER_CONFIG));
    app.get('/scim/v2/ResourceTypes', route, async (_request, reply) =>
      send(reply, 200, listResponse(SCIM_RESOURCE_TYPES.length, 1, [...SCIM_RESOURCE_TYPES])),
    );
    app.get('/scim/v2/ResourceTypes/:id', route, async (request, reply) => {
      const found = SCIM_RESOURCE_TYPES.find((t) => t.id === idParam(request));
      if (!found) throw new LapseError('not_found', 'there is no such resource type', { scimType: 'noTarget' });
      return send(reply, 200, found);
    });
    app.get('/scim/v2/Schemas', route, async (_request, reply) => send(reply, 200, listResponse(SCIM_SCHEMAS.length, 1, [...SCIM_SCHEMAS])));
    app.get('/scim/v2/Schemas/:id', route, async (request, reply) => {
      const found = SCIM_SCHEMAS.find((s) => s.id === idParam(request));
      if (!found) throw new LapseError('not_found', 'there is no such schema', { scimType: 'noTarget' });
      return send(reply, 200, found);
    });

    // Users
    app.get('/scim/v2/Users', route, async (request, reply) => {
      const query = request.query as Record<string, unknown>;
      const page = pageOf(query);
      const filter = single(query, 'filter');
      const clauses = filter === undefined ? {} : mergeClauses(parseScimFilter(filter, { username: 'userName', externalid: 'externalId', id: 'id' }));
      if (clauses === null) return send(reply, 200, listResponse(0, page.startIndex, []));
      const { total, people } = await engine.directory.listPeople(
        callerOf(request),
        {
          ...(clauses.userName !== undefined ? { name: clauses.userName.toLowerCase() } : {}),
          ...(clauses.externalId !== undefined ? { directoryId: clauses.externalId } : {}),
          ...(clauses.id !== undefined ? { id: clauses.id } : {}),
        },
        page,
      );
      const base = baseUrl(engine, request);
      return send(
        reply,
        200,
        listResponse(
          total,
          page.startIndex,
          people.map((p) => userResource(base, p)),
        ),
      );
    });
    app.get('/scim/v2/Users/:id', route, async (request, reply) =>
      send(reply, 200, userResource(baseUrl(engine, request), await engine.directory.person(callerOf(request), idParam(request)))),
    );
    app.post('/scim/v2/Users', route, async (request, reply) => {
      const who = callerOf(request);
      const id = await engine.directory.createPerson(who, parseUserResource(request.body));
      const resource = userResource(baseUrl(engine, request), await engine.directory.person(who, id));
      reply.header('location', resource.meta.location);
      return send(reply, 201, resource);
    });
    app.put('/scim/v2/Users/:id', route, async (request, reply) => {
      const who = callerOf(request);
      const id = idParam(request);
      const replacement = parseUserResource(request.body);
      // NB. A PUT that leaves out `active` keeps it: a replacement must not re-enable a deprovisioned person by omission.
      const keepsActive = !(typeof request.body === 'object' && request.body !== null && 'active' in request.body);
      await engine.directory.updatePerson(who, id, (current) => ({ ...replacement, active: keepsActive ? current.active : replacement.active }));
      return send(reply, 200, userResource(baseUrl(engine, request), await engine.directory.person(who, id)));
    });
    app.patch('/scim/v2/Users/:id', route, async (request, reply) => {
      const who = callerOf(request);
      const id = idParam(request);
      const operations = parsePatch(request.body);
      await engine.directory.updatePerson(who, id, (current) => applyUserPatch(current, operations));
      return send(reply, 200, userResource(baseUrl(engine, request), await engine.directory.person(who, id)));
    });
    app.delete('/scim/v2/Users/:id', route, async (request, reply) => {
      await engine.directory.deletePerson(callerOf(request), idParam(request));
      return reply.code(204).send();
    });

    // Groups
    const withMembers = (query: Record<string, unknown>) => !/(^|,)\s*members\s*(,|$)/i.test(single(query, 'excludedAttributes') ?? '');
    app.get('/scim/v2/Groups', route, async (request, reply) => {
      const query = request.query as Record<string, unknown>;
      const page = pageOf(query);
      const filter = single(query, 'filter');
      const clauses =
        filter === undefined
          ? {}
          : mergeClauses(parseScimFilter(filter, { displayname: 'displayName', externalid: 'externalId', id: 'id', 'members.value': 'memberId' }));
      if (clauses === null) return send(reply, 200, listResponse(0, page.startIndex, []));
      const members = withMembers(query);
      const { total, groups } = await engine.directory.listGroups(callerOf(request), clauses, { ...page, withMembers: members });
      const base = baseUrl(engine, request);
      return send(
        reply,
        200,
        listResponse(
          total,
          page.startIndex,
          groups.map((g) => groupResource(base, g, members)),
        ),
      );
    });
    app.get('/scim/v2/Groups/:id', route, async (request, reply) => {
      const members = withMembers(request.query as Record<string, unknown>);
      return send(reply, 200, groupResource(baseUrl(engine, request), await engine.directory.group(callerOf(request), idParam(request), members), members));
    });
    app.post('/scim/v2/Groups', route, async (request, reply) => {
      const who = callerOf(request);
      const id = await engine.directory.createGroup(who, parseGroupResource(request.body));
      const resource = groupResource(baseUrl(engine, request), await engine.directory.group(who, id), true);
      reply.header('location', resource.meta.location);
      return send(reply, 201, resource);
    });
    app.put('/scim/v2/Groups/:id', route, async (request, reply) => {
      const who = callerOf(request);
      const id = idParam(request);
      const replacement = parseGroupResource(request.body);
      await engine.directory.updateGroup(who, id, () => replacement);
      return send(reply, 200, groupResource(baseUrl(engine, request), await engine.directory.group(who, id), true));
    });
    app.patch('/scim/v2/Groups/:id', route, async (request, reply) => {
      const who = callerOf(request);
      const id = idParam(request);
      const operations = parsePatch(request.body);
      await engine.directory.updateGroup(who, id, (current) => applyGroupPatch(current, operations));
      // NB. Entra ID and Okta accept 204 after a group PATCH; it spares sending back large member lists.
      return reply.code(204).send();
    });
    app.delete('/scim/v2/Groups/:id', route, async (request, reply) => {
      await engine.directory.deleteGroup(callerOf(request), idParam(request));
      return reply.code(204).send();
    });
  };
}
