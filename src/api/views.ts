import { z } from 'zod';
import { LapseError } from '../domain/errors.js';
import { GRANT_STATUSES } from '../domain/grant.js';
import { REQUEST_KINDS, REQUEST_STATUSES, type AccessRequest } from '../domain/request.js';
import { REVIEW_DECISIONS, type Review } from '../domain/review.js';
import type { StoredGrant } from '../engine/index.js';
import type { AuditEvent } from '../audit/index.js';

/**
 * What the API shows of requests, grants, reviews and audit events: one zod schema per resource
 * (validating responses and documenting them in OpenAPI) and the function that produces it.
 * Internals (access keys, connector handles, attempt counters) never leave the server.
 */

const iso = z.string().describe('ISO-8601 time');
const subjectSet = z.object({ users: z.array(z.string()), groups: z.array(z.string()) });
const principal = z.object({ id: z.string(), kind: z.enum(['user', 'service']), groups: z.array(z.string()) });

export const requestView = z.object({
  id: z.string(),
  kind: z.enum(REQUEST_KINDS),
  principal,
  target: z.string(),
  entitlement: z.string(),
  durationMs: z.number().int(),
  reason: z.string(),
  ticket: z.string().nullable(),
  parameters: z.record(z.string(), z.string()),
  status: z.enum(REQUEST_STATUSES),
  policy: z.string().nullable(),
  reasons: z.array(z.string()),
  stages: z.array(z.object({ name: z.string(), approvers: subjectSet, quorum: z.number().int() })),
  currentStage: z.number().int(),
  grantId: z.string().nullable(),
  createdAt: iso,
  decidedAt: iso.nullable(),
  pendingUntil: iso.nullable(),
});

export const grantView = z.object({
  id: z.string(),
  requestId: z.string(),
  principalId: z.string(),
  target: z.string(),
  entitlement: z.string(),
  status: z.enum(GRANT_STATUSES),
  durationMs: z.number().int(),
  breakGlass: z.boolean(),
  activatedAt: iso.nullable(),
  expiresAt: iso.nullable(),
  endReason: z.string().nullable(),
  endedBy: z.string().nullable(),
  endedAt: iso.nullable(),
  extensions: z.number().int(),
  credentialsWaiting: z.boolean().describe('Credentials were issued and not yet fetched (POST …/credentials, once)'),
  lastError: z.string().nullable().describe('The last connector error while provisioning or revoking'),
  propagationPending: z
    .string()
    .nullable()
    .describe(
      'Set while the grant is "revoked, propagation pending": the target (an eventually consistent cloud) accepted the removal but reading it back does not show it yet. The grant stays revoking, and Lapse rechecks until it is confirmed.',
    ),
});

export const reviewView = z.object({
  id: z.string(),
  reviewerId: z.string(),
  decision: z.enum(REVIEW_DECISIONS),
  comment: z.string(),
  stage: z.number().int(),
  createdAt: iso,
});

export const auditEventView = z.object({
  seq: z.number().int(),
  id: z.string(),
  at: iso,
  action: z.string(),
  actor: z.string(),
  subject: z.string().optional(),
  data: z.record(z.string(), z.unknown()).optional(),
});

export type RequestView = z.infer<typeof requestView>;
export type GrantView = z.infer<typeof grantView>;

const time = (date: Date | null) => date?.toISOString() ?? null;

export function toRequestView(request: AccessRequest): RequestView {
  return {
    id: request.id,
    kind: request.kind,
    principal: { id: request.principal.id, kind: request.principal.kind, groups: [...request.principal.groups] },
    target: request.target,
    entitlement: request.entitlement,
    durationMs: request.durationMs,
    reason: request.reason,
    ticket: request.ticket,
    parameters: { ...request.parameters },
    status: request.status,
    policy: request.policy,
    reasons: [...request.reasons],
    stages: request.stages.map((s) => ({ name: s.name, approvers: { users: [...s.approvers.users], groups: [...s.approvers.groups] }, quorum: s.quorum })),
    currentStage: request.currentStage,
    grantId: request.grantId,
    createdAt: request.createdAt.toISOString(),
    decidedAt: time(request.decidedAt),
    pendingUntil: time(request.pendingUntil),
  };
}

export function toGrantView(grant: StoredGrant, credentialsWaiting: boolean): GrantView {
  return {
    id: grant.id,
    requestId: grant.requestId,
    principalId: grant.principalId,
    target: grant.target,
    entitlement: grant.entitlement,
    status: grant.status,
    durationMs: grant.durationMs,
    breakGlass: grant.breakGlass,
    activatedAt: time(grant.activatedAt),
    expiresAt: time(grant.expiresAt),
    endReason: grant.endReason,
    endedBy: grant.endedBy,
    endedAt: time(grant.endedAt),
    extensions: grant.extensions,
    credentialsWaiting,
    lastError: grant.lastError,
    propagationPending: grant.propagationPending,
  };
}

export function toReviewView(review: Review): z.infer<typeof reviewView> {
  return {
    id: review.id,
    reviewerId: review.reviewer.id,
    decision: review.decision,
    comment: review.comment,
    stage: review.stage,
    createdAt: review.at.toISOString(),
  };
}

export function toAuditEventView(event: AuditEvent): z.infer<typeof auditEventView> {
  return {
    seq: event.seq,
    id: event.id,
    at: event.at,
    action: event.action,
    actor: event.actor,
    ...(event.subject ? { subject: event.subject } : {}),
    ...(event.data ? { data: event.data } : {}),
  };
}

/** A page of a list: `nextCursor` continues it, null at the end. */
export function pageOf<T extends z.ZodType>(item: T) {
  return z.object({ items: z.array(item), nextCursor: z.string().nullable() });
}

export const pageQuery = {
  limit: z.coerce.number().int().min(1).max(200).default(50),
  cursor: z
    .string()
    .max(100)
    .regex(/^[A-Za-z0-9_-]+$/, 'is not a cursor from a previous page')
    .optional(),
};

/** Cursors are opaque to clients: base64url of the last item's id (or audit sequence number). */
export function encodeCursor(value: string | number): string {
  return Buffer.from(String(value), 'utf8').toString('base64url');
}

export function decodeCursor(cursor: string | undefined): string | undefined {
  if (cursor === undefined) return undefined;
  const value = Buffer.from(cursor, 'base64url').toString('utf8');
  if (!/^[a-z]{3}_[0-9a-z]{1,60}$|^[0-9]{1,18}$/.test(value)) {
    throw new LapseError('validation_failed', 'cursor is not one this server returned', {
      where: 'cursor',
      hint: 'Pass nextCursor from the previous page unchanged, or omit it to start over.',
    });
  }
  return value;
}
