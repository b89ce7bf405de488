import { z } from 'zod';
import { LapseError } from '../domain/errors.js';
import { anyId as id, commentText, connectorParameters, durationMs, reasonText, resourceName as name, ticketText } from '../domain/input-schemas.js';
import { REVIEW_DECISIONS } from '../domain/review.js';
import { boundedText } from '../domain/text.js';

/**
 * Bounded schemas for every use-case input, built from the shared fields in
 * domain/input-schemas.ts that the API and CLI validate with too, so a value the engine would
 * refuse is refused at the edge with the same message.
 */
const printable = (max: number) => boundedText(max);

export const principalInput = z
  .object({
    id: printable(256).min(1),
    kind: z.enum(['user', 'service']).default('user'),
    groups: z.array(printable(256).min(1)).max(500).readonly().default([]),
    via: z
      .object({ tokenId: printable(64).min(1), issuedBy: printable(256).min(1) })
      .strict()
      .optional(),
  })
  .strict();

export const clientInput = z
  .object({
    ip: printable(64).optional(),
    userAgent: printable(512).optional(),
    /** The device posture a trusted proxy vouched for (X-Lapse-Device-Posture), see docs/monitoring.md#risk. */
    devicePosture: printable(64).optional(),
    mfaAt: z.date().optional(),
  })
  .strict()
  .default({});

const reason = reasonText;
const comment = commentText.default('');
const parameters = connectorParameters.default({});

export const submitInput = z
  .object({
    principal: principalInput,
    target: name,
    entitlement: name,
    durationMs: durationMs.optional(),
    reason,
    ticket: ticketText.optional(),
    parameters,
    client: clientInput,
  })
  .strict();

export const reviewInput = z.object({ requestId: id, reviewer: principalInput, decision: z.enum(REVIEW_DECISIONS), comment, client: clientInput }).strict();

export const cancelInput = z.object({ requestId: id, by: principalInput }).strict();

export const extendInput = z.object({ grantId: id, by: principalInput, durationMs, reason, ticket: ticketText.optional(), client: clientInput }).strict();

export const endGrantInput = z.object({ grantId: id, by: principalInput, reason: reasonText.default('') }).strict();

export const breakGlassInput = z
  .object({ principal: principalInput, target: name, entitlement: name, durationMs, reason, parameters, client: clientInput })
  .strict();

export const breakGlassReviewInput = z.object({ requestId: id, reviewer: principalInput, comment }).strict();

export const fetchCredentialsInput = z.object({ grantId: id, by: principalInput }).strict();

export type FetchCredentialsInput = z.input<typeof fetchCredentialsInput>;
export type SubmitInput = z.input<typeof submitInput>;
export type ReviewInput = z.input<typeof reviewInput>;
export type CancelInput = z.input<typeof cancelInput>;
export type ExtendInput = z.input<typeof extendInput>;
export type EndGrantInput = z.input<typeof endGrantInput>;
export type BreakGlassInput = z.input<typeof breakGlassInput>;
export type BreakGlassReviewInput = z.input<typeof breakGlassReviewInput>;

/** Parses a use-case input or throws one validation error listing every problem with its field. */
export function parseInput<S extends z.ZodType>(schema: S, value: unknown, what: string): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => `${issue.path.join('.') || '(input)'}: ${issue.message}`);
  throw new LapseError('validation_failed', `invalid ${what}: ${problems[0]}`, {
    where: what,
    problems,
    hint: 'Correct the fields listed and try again; nothing was changed.',
  });
}
