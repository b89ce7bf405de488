import type { FastifyRequest } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { commentText, connectorParameters, durationText, idOf, reasonText, resourceName as name, ticketText } from '../../domain/input-schemas.js';
import { parseDuration } from '../../domain/duration.js';
import { LapseError } from '../../domain/errors.js';
import { candidatePolicies } from '../../domain/policy/index.js';
import { REQUEST_STATUSES } from '../../domain/request.js';
import { REVIEW_DECISIONS } from '../../domain/review.js';
import { breakGlassEntitlements, type Engine } from '../../engine/index.js';
import { type Caller } from '../authenticate.js';
import { idempotent } from '../idempotency.js';
import { problemSchema } from '../problem.js';
import {
  auditEventView,
  decodeCursor,
  encodeCursor,
  grantView,
  pageOf,
  pageQuery,
  requestView,
  reviewView,
  toAuditEventView,
  toGrantView,
  toRequestView,
  toReviewView,
} from '../views.js';
import { callerOf, visibleRequest, refuseRole } from '../authorization.js';
import { readsEverything } from '../../domain/authorization.js';

const parameters = connectorParameters.optional();
const errors = { 400: problemSchema, 401: problemSchema, 403: problemSchema, 404: problemSchema, 409: problemSchema, 410: problemSchema };

const catalogueItem = z.object({
  target: z.string(),
  entitlement: z.string(),
  description: z.string(),
  connector: z.string(),
  policy: z.string(),
  autoApprove: z.boolean(),
  autoApproveIf: z.string().nullable(),
  defaultDurationMs: z.number().int(),
  maxDurationMs: z.number().int(),
  requires: z.object({ justificationMinLength: z.number().int(), ticketPattern: z.string().nullable(), mfaMaxAgeMs: z.number().int().nullable() }),
  conditions: z.string().nullable(),
  stages: z.array(z.object({ name: z.string(), quorum: z.number().int(), approvers: z.object({ users: z.array(z.string()), groups: z.array(z.string()) }) })),
  checkoutAccount: z.string().nullable().describe('A vault check-out: the account whose password the grant lends (docs/vault.md); null otherwise'),
});

const submitBody = z
  .object({ target: name, entitlement: name, duration: durationText.optional(), reason: reasonText, ticket: ticketText.optional(), parameters })
  .strict();
const reviewBody = z.object({ decision: z.enum(REVIEW_DECISIONS), comment: commentText.optional() }).strict();
const breakGlassBody = z.object({ target: name, entitlement: name, duration: durationText, reason: reasonText, parameters }).strict();
const listQuery = z
  .object({
    scope: z.enum(['mine', 'review', 'all']).default('mine'),
    status: z.enum(REQUEST_STATUSES).optional(),
    target: name.optional(),
    kind: requestView.shape.kind.optional(),
    awaitingReview: z
      .enum(['true', 'false'])
      .transform((value) => value === 'true')
      .optional()
      .describe('true: break-glass requests not yet reviewed after the fact; false: those reviewed'),
    ...pageQuery,
  })
  .strict();
const historyQuery = z
  .object({
    since: durationText.default('90d').describe('How far back, e.g. 30d (at most 365d; default 90d)'),
    limit: z.coerce.number().int().min(1).max(50).default(10).describe('How many recent requests to list (default 10)'),
  })
  .strict();
const MAX_HISTORY_MS = 365 * 24 * 3_600_000;
const requesterHistoryView = z.object({
  principalId: z.string(),
  since: z.string().describe('ISO-8601 time: the start of the window'),
  counts: z.object({
    pending: z.number().int(),
    approved: z.number().int(),
    denied: z.number().int(),
    cancelled: z.number().int(),
    timed_out: z.number().int(),
    breakGlass: z.number().int().describe('Break-glass requests among them'),
    revokedByAdmin: z.number().int().describe('Grants an admin ended early (revoke)'),
  }),
  recent: z.array(
    z.object({
      id: z.string(),
      kind: requestView.shape.kind,
      target: z.string(),
      entitlement: z.string(),
      status: requestView.shape.status,
      durationMs: z.number().int(),
      createdAt: z.string(),
      grantEndReason: z.string().nullable().describe('How the grant ended: expired, released, revoked...; null while active or without a grant'),
    }),
  ),
});
const requestDetail = z.object({
  request: requestView,
  reviews: z.array(reviewView),
  grant: grantView.nullable(),
  timeline: z.array(auditEventView),
});

/** What the engine wants to know about the caller's client for a decision (MFA freshness, where from). */
export function clientOf(request: FastifyRequest, caller: Caller) {
  const userAgent = request.headers['user-agent']?.slice(0, 512);
  const devicePosture = devicePostureOf(request);
  return {
    ip: request.ip.slice(0, 64),
    ...(userAgent ? { userAgent } : {}),
    ...(devicePosture ? { devicePosture } : {}),
    ...(caller.mfaAt ? { mfaAt: caller.mfaAt } : {}),
  };
}

/**
 * The device posture header, read only from a request a trusted proxy forwarded (the address
 * Fastify resolved differs from the peer's, which it does only for `auth.trustedProxies`): a
 * client talking to Lapse directly cannot vouch for its own device.
 */
function devicePostureOf(request: FastifyRequest): string | undefined {
  const value = request.headers['x-lapse-device-posture'];
  if (typeof value !== 'string' || request.ip === request.socket.remoteAddress) return undefined;
  const posture = value.trim().slice(0, 64);
  return /^[\x21-\x7e]+$/.test(posture) ? posture : undefined;
}

/**
 * The catalogue, requests, reviews and break-glass: how people ask for access and decide on it.
 */
export function requestRoutes(engine: Engine): FastifyPluginAsyncZod {
  return async (app) => {
    app.get(
      '/api/v1/catalogue',
      {
        config: { auth: { scope: 'read' } },
        schema: {
          tags: ['requests'],
          summary: 'What I may request, on what terms',
          security: [{ bearer: [] }],
          response: { 200: z.object({ items: z.array(catalogueItem) }), ...errors },
        },
      },
      async (request) => {
        const caller = callerOf(request);
        const config = engine.config;
        const items: z.infer<typeof catalogueItem>[] = [];
        for (const target of config.targets.values()) {
          for (const entitlement of target.entitlements.values()) {
            // First match wins in evaluation, so the first policy naming the caller sets the terms.
            const policy = candidatePolicies(config.policies, target.name, entitlement.name, caller.principal)[0]?.definition;
            if (!policy) continue;
            items.push({
              target: target.name,
              entitlement: entitlement.name,
              description: entitlement.description,
              connector: target.connector,
              policy: policy.name,
              autoApprove: policy.autoApprove,
              autoApproveIf: policy.autoApproveIf ?? null,
              defaultDurationMs: policy.duration.defaultMs,
              maxDurationMs: policy.duration.maxMs,
              requires: {
                justificationMinLength: policy.require.justificationMinLength,
                ticketPattern: policy.require.ticketPattern ?? null,
                mfaMaxAgeMs: policy.require.mfaMaxAgeMs ?? null,
              },
              conditions: policy.conditions ?? null,
              stages: policy.approval.stages.map((s) => ({
                name: s.name,
                quorum: s.quorum,
                approvers: { users: [...s.approvers.users], groups: [...s.approvers.groups] },
              })),
              checkoutAccount: entitlement.checkout?.account ?? null,
            });
          }
        }
        return { items };
      },
    );

    app.post(
      '/api/v1/requests',
      {
        config: { auth: { scope: 'request' } },
        schema: {
          tags: ['requests'],
          summary: 'Ask for an entitlement',
          description: 'The policy decides at once: approved (provisioning starts), pending (approvers are asked) or denied. Accepts Idempotency-Key.',
          security: [{ bearer: [] }],
          body: submitBody,
          response: { 201: z.object({ request: requestView }), ...errors },
        },
      },
      async (request, reply) => {
        const caller = callerOf(request);
        const body = request.body;
        return idempotent(
          engine,
          request,
          reply,
          caller,
          201,
          () =>
            engine.submit({
              principal: caller.principal,
              target: body.target,
              entitlement: body.entitlement,
              ...(body.duration ? { durationMs: parseDuration(body.duration, 'duration') } : {}),
              reason: body.reason,
              ...(body.ticket ? { ticket: body.ticket } : {}),
              parameters: body.parameters ?? {},
              client: clientOf(request, caller),
            }),
          ({ request: created }) => ({ request: toRequestView(created) }),
        );
      },
    );

    app.get(
      '/api/v1/requests',
      {
        config: { auth: { scope: 'read' } },
        schema: {
          tags: ['requests'],
          summary: 'List requests: mine, those I may review now, or all (admins, auditors)',
          security: [{ bearer: [] }],
          querystring: listQuery,
          response: { 200: pageOf(requestView), ...errors },
        },
      },
      async (request) => {
        const caller = callerOf(request);
        const { scope, status, target, kind, awaitingReview, limit, cursor } = request.query;
        const beforeId = decodeCursor(cursor);
        if (scope === 'all' && !readsEverything(engine.config.roles, caller.principal)) {
          await refuseRole(
            engine,
            caller.principal,
            '/api/v1/requests?scope=all',
            'only admins and auditors may list every request',
            'Use scope=mine or scope=review.',
          );
        }
        let items;
        if (scope === 'review') {
          items = await engine.read.reviewInbox(caller.principal, {
            ...(target ? { target } : {}),
            ...(kind ? { kind } : {}),
            ...(beforeId ? { beforeId } : {}),
            limit: limit + 1,
          });
        } else {
          items = await engine.read.requests({
            ...(scope === 'mine' ? { principalId: caller.principal.id } : {}),
            ...(status ? { status } : {}),
            ...(target ? { target } : {}),
            ...(kind ? { kind } : {}),
            ...(awaitingReview !== undefined ? { awaitingReview } : {}),
            ...(beforeId ? { beforeId } : {}),
            limit: limit + 1,
          });
        }
        const page = items.slice(0, limit);
        return { items: page.map(toRequestView), nextCursor: items.length > limit ? encodeCursor(page.at(-1)!.id) : null };
      },
    );

    app.get(
      '/api/v1/requests/:id',
      {
        config: { auth: { scope: 'read' } },
        schema: {
          tags: ['requests'],
          summary: 'A request with its reviews, grant and timeline',
          security: [{ bearer: [] }],
          params: z.object({ id: idOf('request') }),
          response: { 200: requestDetail, ...errors },
        },
      },
      async (request) => {
        const found = await visibleRequest(engine, request, request.params.id);
        const grant = found.grantId ? await engine.read.grant(found.grantId) : undefined;
        const reviews = await engine.read.reviews(found.id);
        const timeline = await engine.read.timeline([found.id, ...(grant ? [grant.id] : [])], 500);
        return {
          request: toRequestView(found),
          reviews: reviews.map(toReviewView),
          grant: grant ? toGrantView(grant, await engine.read.credentialsWaiting(grant.id)) : null,
          timeline: timeline.map(toAuditEventView),
        };
      },
    );

    app.get(
      '/api/v1/requests/:id/requester-history',
      {
        config: { auth: { scope: 'read' } },
        schema: {
          tags: ['requests'],
          summary: "The requester's requests over a window, this one included: counts by outcome and the latest few (for the people deciding)",
          description:
            'Anyone who may see the request (its approvers, admins, auditors, the requester) may see this summary; reasons and tickets are not included. It is the same for every request of one requester, so a client may show it once per requester.',
          security: [{ bearer: [] }],
          params: z.object({ id: idOf('request') }),
          querystring: historyQuery,
          response: { 200: requesterHistoryView, ...errors },
        },
      },
      async (request) => {
        const found = await visibleRequest(engine, request, request.params.id);
        const windowMs = parseDuration(request.query.since, 'since');
        if (windowMs > MAX_HISTORY_MS)
          throw new LapseError('validation_failed', `since ${request.query.since} reaches back more than 365 days`, {
            where: 'since',
            hint: 'Use at most 365d.',
          });
        const since = new Date(Date.now() - windowMs);
        const history = await engine.read.requesterHistory(found.principal.id, { since, limit: request.query.limit });
        return {
          principalId: found.principal.id,
          since: since.toISOString(),
          counts: history.counts,
          recent: history.recent.map((r) => ({ ...r, createdAt: r.createdAt.toISOString() })),
        };
      },
    );

    app.post(
      '/api/v1/requests/:id/cancel',
      {
        config: { auth: { scope: 'request' } },
        schema: {
          tags: ['requests'],
          summary: 'Withdraw my pending request',
          security: [{ bearer: [] }],
          params: z.object({ id: idOf('request') }),
          response: { 200: z.object({ request: requestView }), ...errors },
        },
      },
      async (request, reply) => {
        const caller = callerOf(request);
        await visibleRequest(engine, request, request.params.id);
        return idempotent(
          engine,
          request,
          reply,
          caller,
          200,
          () => engine.cancel({ requestId: request.params.id, by: caller.principal }),
          (cancelled) => ({ request: toRequestView(cancelled) }),
        );
      },
    );

    app.post(
      '/api/v1/requests/:id/reviews',
      {
        config: { auth: { scope: 'approve' } },
        schema: {
          tags: ['requests'],
          summary: 'Approve or deny a request (approvers of its current stage; never your own)',
          security: [{ bearer: [] }],
          params: z.object({ id: idOf('request') }),
          body: reviewBody,
          response: { 200: z.object({ request: requestView, effect: z.string() }), ...errors },
        },
      },
      async (request, reply) => {
        const caller = callerOf(request);
        await visibleRequest(engine, request, request.params.id);
        return idempotent(
          engine,
          request,
          reply,
          caller,
          200,
          () =>
            engine.review({
              requestId: request.params.id,
              reviewer: caller.principal,
              decision: request.body.decision,
              comment: request.body.comment ?? '',
              client: clientOf(request, caller),
            }),
          (outcome) => ({ request: toRequestView(outcome.request), effect: outcome.effect }),
        );
      },
    );

    app.get(
      '/api/v1/break-glass/entitlements',
      {
        config: { auth: { scope: 'read' } },
        schema: {
          tags: ['requests'],
          summary: 'What I may break glass into (empty when break-glass is off or not for me)',
          security: [{ bearer: [] }],
          response: {
            200: z.object({
              items: z.array(z.object({ target: z.string(), entitlement: z.string(), description: z.string(), connector: z.string() })),
              maxDurationMs: z.number().int().describe('Longest break-glass grant'),
              minReasonLength: z.number().int().describe('Shortest reason accepted'),
            }),
            ...errors,
          },
        },
      },
      async (request) => {
        const caller = callerOf(request);
        const { maxDurationMs, minReasonLength } = engine.config.breakGlass;
        return { items: breakGlassEntitlements(engine.config, caller.principal), maxDurationMs, minReasonLength };
      },
    );

    app.post(
      '/api/v1/break-glass',
      {
        config: { auth: { scope: 'request' } },
        schema: {
          tags: ['requests'],
          summary: 'Emergency access without approval (configured subjects and entitlements only; reviewed afterwards)',
          security: [{ bearer: [] }],
          body: breakGlassBody,
          response: { 201: z.object({ request: requestView }), ...errors },
        },
      },
      async (request, reply) => {
        const caller = callerOf(request);
        const body = request.body;
        return idempotent(
          engine,
          request,
          reply,
          caller,
          201,
          () =>
            engine.breakGlass({
              principal: caller.principal,
              target: body.target,
              entitlement: body.entitlement,
              durationMs: parseDuration(body.duration, 'duration'),
              reason: body.reason,
              parameters: body.parameters ?? {},
              client: clientOf(request, caller),
            }),
          (created) => ({ request: toRequestView(created) }),
        );
      },
    );

    app.post(
      '/api/v1/break-glass/:id/review',
      {
        config: { auth: { scope: 'approve' } },
        schema: {
          tags: ['requests'],
          summary: 'Review a break-glass use after the fact (admins, auditors; not your own)',
          security: [{ bearer: [] }],
          params: z.object({ id: idOf('request') }),
          body: z.object({ comment: commentText.optional() }).strict(),
          response: { 200: z.object({ request: requestView }), ...errors },
        },
      },
      async (request, reply) => {
        const caller = callerOf(request);
        await visibleRequest(engine, request, request.params.id);
        return idempotent(
          engine,
          request,
          reply,
          caller,
          200,
          () => engine.reviewBreakGlass({ requestId: request.params.id, reviewer: caller.principal, comment: request.body.comment ?? '' }),
          (reviewed) => ({ request: toRequestView(reviewed) }),
        );
      },
    );
  };
}
