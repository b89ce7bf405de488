import { z } from 'zod';
import { formatDuration } from '../../domain/duration.js';

/**
 * What the CLI reads from the API (docs/api.md), checked on arrival. Objects are loose: a newer
 * server may add fields, and `--json` passes them on untouched.
 */

const id = z.string().max(64);
const time = z.string().max(64);
const words = z.string().max(8192);

const stageSchema = z.looseObject({
  name: z.string().max(200),
  approvers: z.looseObject({ users: z.array(z.string().max(256)).max(1000).default([]), groups: z.array(z.string().max(256)).max(1000).default([]) }),
  quorum: z.number().int(),
});

export const requestSchema = z.looseObject({
  id,
  kind: z.string().max(32),
  principal: z.looseObject({ id: z.string().max(256) }),
  target: z.string().max(128),
  entitlement: z.string().max(128),
  durationMs: z.number(),
  reason: words,
  ticket: z.string().max(256).nullable().optional(),
  status: z.string().max(32),
  policy: z.string().max(256).nullable().optional(),
  reasons: z.array(words).max(100).default([]),
  stages: z.array(stageSchema).max(20).default([]),
  currentStage: z.number().int().nullable().optional(),
  grantId: id.nullable().optional(),
  createdAt: time,
  decidedAt: time.nullable().optional(),
  pendingUntil: time.nullable().optional(),
});
export type LapseRequest = z.infer<typeof requestSchema>;

export const grantSchema = z.looseObject({
  id,
  requestId: id,
  principalId: z.string().max(256),
  target: z.string().max(128),
  entitlement: z.string().max(128),
  status: z.string().max(32),
  durationMs: z.number(),
  breakGlass: z.boolean().optional(),
  activatedAt: time.nullable().optional(),
  expiresAt: time.nullable().optional(),
  endReason: words.nullable().optional(),
  endedBy: z.string().max(256).nullable().optional(),
  endedAt: time.nullable().optional(),
  extensions: z.number().int().optional(),
  credentialsWaiting: z.boolean().default(false),
  lastError: words.nullable().optional(),
  propagationPending: words.nullable().optional(),
});
export type LapseGrant = z.infer<typeof grantSchema>;

const reviewSchema = z.looseObject({
  reviewerId: z.string().max(256),
  decision: z.string().max(32),
  comment: words.nullable().optional(),
  stage: z.unknown().optional(),
  createdAt: time,
});
const timelineEntrySchema = z.looseObject({
  at: time,
  action: z.string().max(128),
  actor: z.string().max(256).nullable().optional(),
  data: z.unknown().optional(),
});

export const requestAnswer = z.looseObject({ request: requestSchema });
export const grantAnswer = z.looseObject({ grant: grantSchema });
export const requestDetail = z.looseObject({
  request: requestSchema,
  reviews: z.array(reviewSchema).max(1000).default([]),
  grant: grantSchema.nullable().optional(),
  timeline: z.array(timelineEntrySchema).max(10_000).default([]),
});
export type RequestDetail = z.infer<typeof requestDetail>;
export const reviewAnswer = z.looseObject({ request: requestSchema, effect: z.unknown().optional() });
export const credentialsAnswer = z.looseObject({ credentials: z.record(z.string().max(128), z.string().max(65_536)) });

const page = <T extends z.ZodType>(item: T) => z.looseObject({ items: z.array(item).max(1000), nextCursor: z.string().max(2000).nullable().optional() });
export const requestPage = page(requestSchema);
export const grantPage = page(grantSchema);

export const auditEventSchema = z.looseObject({
  seq: z.union([z.number(), z.string().max(32)]),
  id: z.string().max(64).optional(),
  at: time,
  action: z.string().max(128),
  actor: z.string().max(256).nullable().optional(),
  subject: z.string().max(256).nullable().optional(),
  data: z.unknown().optional(),
});
export type AuditEvent = z.infer<typeof auditEventSchema>;
export const auditPage = page(auditEventSchema);

export const catalogueAnswer = z.looseObject({
  items: z.array(z.looseObject({ target: z.string().max(128), entitlement: z.string().max(128), connector: z.string().max(64) })).max(10_000),
});

/** "in 42m", "3m ago": how far `iso` is from `now`. */
export function relative(iso: string, now = Date.now()): string {
  const delta = Date.parse(iso) - now;
  if (Number.isNaN(delta)) return iso;
  const span = formatDuration(Math.abs(Math.round(delta / 1000) * 1000));
  return delta >= 0 ? `in ${span}` : `${span} ago`;
}

/** Who may approve the current stage of a pending request, in words. */
export function awaitedApprovers(request: LapseRequest): string {
  const stage = request.stages[request.currentStage ?? 0];
  if (!stage) return 'an approver';
  const who = [...stage.approvers.groups.map((g) => `group ${g}`), ...stage.approvers.users];
  const count = stage.quorum > 1 ? `${stage.quorum} approvals` : 'an approval';
  return `${count} from ${who.length > 0 ? who.join(', ') : 'an approver'} (stage ${stage.name}${request.stages.length > 1 ? ` ${(request.currentStage ?? 0) + 1}/${request.stages.length}` : ''})`;
}

export function describeRequest(request: LapseRequest): string {
  const head = `${request.id}  ${request.target}/${request.entitlement} for ${formatDuration(request.durationMs)}  ${request.status}`;
  const lines = [head];
  if (request.status === 'pending') {
    lines.push(`  waiting for ${awaitedApprovers(request)}${request.pendingUntil ? `; times out ${relative(request.pendingUntil)}` : ''}`);
  }
  if (request.status === 'approved' && request.grantId) lines.push(`  grant ${request.grantId}`);
  for (const reason of request.reasons) lines.push(`  - ${reason}`);
  return lines.join('\n');
}

export function describeGrant(grant: LapseGrant): string {
  const lines = [`${grant.id}  ${grant.target}/${grant.entitlement}  ${grant.status}${grant.breakGlass ? '  BREAK-GLASS' : ''}`];
  if (grant.status === 'active' && grant.expiresAt) lines.push(`  expires ${grant.expiresAt} (${relative(grant.expiresAt)})`);
  if (grant.status === 'provisioning') lines.push('  being set up on the target');
  if (grant.endedAt) lines.push(`  ended ${grant.endedAt}${grant.endReason ? `: ${grant.endReason}` : ''}${grant.endedBy ? ` (by ${grant.endedBy})` : ''}`);
  if (grant.propagationPending) lines.push(`  revoked, propagation pending: ${grant.propagationPending}`);
  if (grant.lastError) lines.push(`  last error: ${grant.lastError}`);
  if (grant.credentialsWaiting) lines.push(`  credentials waiting: fetch them (once) with \`lapse credentials ${grant.id}\``);
  return lines.join('\n');
}
