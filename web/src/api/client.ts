import createClient from 'openapi-fetch';
import type { paths } from '../../../src/api/openapi-types.js';

/** A problem document (RFC 9457) as the API answers every error. */
export interface Problem {
  readonly status: number;
  readonly code: string;
  readonly title: string;
  readonly detail: string;
  readonly where?: string;
  readonly hint?: string;
  readonly problems?: string[];
  readonly stepUp?: { factors: ('totp' | 'webauthn')[]; enroll?: string };
}

export class ApiProblem extends Error {
  constructor(readonly problem: Problem) {
    super(problem.detail);
  }
  get code(): string {
    return this.problem.code;
  }
}

/**
 * The session's CSRF token lives in this module only (memory): never in localStorage or a cookie
 * script can read. It comes from GET /api/v1/auth/status (or /session) or the login answer.
 */
let csrfToken: string | null = null;

export function setCsrfToken(token: string | null): void {
  csrfToken = token;
}

const UNSAFE = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** The typed client: paths, parameters and bodies come from the server's OpenAPI document (src/api/openapi-types.d.ts). */
export const api = createClient<paths>({ baseUrl: '/', credentials: 'same-origin' });

api.use({
  onRequest({ request }) {
    if (UNSAFE.has(request.method) && csrfToken) request.headers.set('x-csrf-token', csrfToken);
    return request;
  },
});

/** The data of a call, or an ApiProblem with the server's explanation. */
export async function unwrap<T>(call: Promise<{ data?: T; error?: unknown; response: Response }>): Promise<T> {
  const { data, error, response } = await call;
  if (error !== undefined || !response.ok) {
    const body = (error ?? {}) as Partial<Problem>;
    throw new ApiProblem({
      status: response.status,
      code: body.code ?? 'http_error',
      title: body.title ?? response.statusText,
      detail: body.detail ?? `the server answered ${response.status}`,
      ...(body.where ? { where: body.where } : {}),
      ...(body.hint ? { hint: body.hint } : {}),
      ...(body.problems ? { problems: body.problems } : {}),
      ...(body.stepUp ? { stepUp: body.stepUp } : {}),
    });
  }
  return data as T;
}

type Json<T> = T extends { content: { 'application/json': infer B } } ? B : never;
export type Ok<P extends keyof paths, M extends 'get' | 'post'> = paths[P][M] extends { responses: { 200: infer R } }
  ? Json<R>
  : paths[P][M] extends { responses: { 201: infer R } }
    ? Json<R>
    : never;

export type Session = Ok<'/api/v1/auth/session', 'get'>;
export type CatalogueItem = Ok<'/api/v1/catalogue', 'get'>['items'][number];
export type AccessRequest = Ok<'/api/v1/requests', 'get'>['items'][number];
export type RequestDetail = Ok<'/api/v1/requests/{id}', 'get'>;
export type Grant = Ok<'/api/v1/grants', 'get'>['items'][number];
export type AuditEvent = Ok<'/api/v1/audit', 'get'>['items'][number];
export type ConfigView = Ok<'/api/v1/config', 'get'>;
export type Finding = Ok<'/api/v1/findings', 'get'>['findings'][number];
export type VerifyResult = Ok<'/api/v1/audit/verify', 'post'>;
export type StepUpBody = NonNullable<paths['/api/v1/mfa/step-up']['post']['requestBody']>['content']['application/json'];
export type MfaOverview = Ok<'/api/v1/mfa', 'get'>;
export type Passkey = MfaOverview['passkeys'][number];
export type TotpEnrollment = Ok<'/api/v1/mfa/totp', 'post'>;
export type ApiToken = Ok<'/api/v1/tokens', 'get'>['tokens'][number];
export type IssuedToken = Ok<'/api/v1/tokens', 'post'>;
export type PasskeyRegistration = NonNullable<paths['/api/v1/mfa/passkeys']['post']['requestBody']>['content']['application/json']['response'];
