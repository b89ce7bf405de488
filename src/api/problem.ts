import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { hasZodFastifySchemaValidationErrors, isResponseSerializationError } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { ERROR_CODES, isLapseError, type ErrorCode } from '../domain/errors.js';

/** With `mfa_step_up_required`: how the client completes the step-up (docs/authentication.md). */
export const stepUpGuidanceSchema = z.object({
  factors: z
    .array(z.enum(['totp', 'webauthn']))
    .max(2)
    .describe('The second factors the caller has enrolled'),
  endpoint: z.string().max(200).describe('POST here with {"totp":"<code>"} or {"webauthn":<assertion>} (sessions)'),
  passkeyOptions: z.string().max(200).describe('POST here for passkey assertion options'),
  header: z.string().max(200).describe('For API tokens: repeat the request with this header'),
  enroll: z.string().max(200).optional().describe('Present when the caller has no factor: where to enroll one'),
});

export type StepUpGuidance = z.infer<typeof stepUpGuidanceSchema>;

/** RFC 9457 problem details, with Lapse's stable error code. Every error response has this shape. */
export const problemSchema = z.object({
  type: z.string().max(200),
  title: z.string().max(200),
  status: z.number().int(),
  code: z.string().max(64),
  detail: z.string().max(4000),
  instance: z.string().max(2000).optional(),
  where: z.string().max(2000).optional(),
  hint: z.string().max(2000).optional(),
  problems: z.array(z.string().max(2000)).max(100).optional(),
  stepUp: stepUpGuidanceSchema.optional(),
});

export type Problem = z.infer<typeof problemSchema>;

function problem(code: ErrorCode, detail: string, request: FastifyRequest, extra: Partial<Problem> = {}): Problem {
  const kind = ERROR_CODES[code];
  return { type: `https://lapse.dev/errors/${code}`, title: kind.title, status: kind.http, code, detail, instance: request.url.slice(0, 2000), ...extra };
}

export function sendProblem(reply: FastifyReply, body: Problem): FastifyReply {
  return reply.code(body.status).header('content-type', 'application/problem+json; charset=utf-8').send(body);
}

/**
 * Maps every error to a problem document. LapseErrors keep their code and hints; request
 * validation failures list each field; anything else is an internal error whose details stay in
 * the log (never in the response).
 */
export function errorHandler(error: FastifyError, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  if (isLapseError(error)) {
    const { where, hint, problems } = error.details;
    const stepUp = stepUpGuidanceSchema.safeParse(error.details.stepUp);
    return sendProblem(
      reply,
      problem(error.code, error.message, request, {
        ...(typeof where === 'string' ? { where } : {}),
        ...(typeof hint === 'string' ? { hint } : {}),
        ...(Array.isArray(problems) ? { problems: problems.map(String) } : {}),
        ...(stepUp.success ? { stepUp: stepUp.data } : {}),
      }),
    );
  }
  if (hasZodFastifySchemaValidationErrors(error)) {
    const problems = error.validation.map((issue) => `${error.validationContext ?? 'request'}${issue.instancePath || ''}: ${issue.message}`);
    return sendProblem(
      reply,
      problem('validation_failed', problems[0] ?? 'invalid request', request, { problems, hint: 'Correct the fields listed; nothing was changed.' }),
    );
  }
  if (error.statusCode && error.statusCode >= 400 && error.statusCode < 500 && !isResponseSerializationError(error)) {
    return sendProblem(reply, { ...problem('validation_failed', error.message, request), status: error.statusCode });
  }
  request.log.error({ err: error }, 'request failed');
  return sendProblem(reply, problem('internal', 'internal error; see the server log', request));
}

export function notFoundHandler(request: FastifyRequest, reply: FastifyReply): FastifyReply {
  return sendProblem(reply, problem('not_found', `no route ${request.method} ${request.url.split('?')[0]}`, request));
}
