import type { FastifyRequest } from 'fastify';
import type { AuthService } from '../auth/index.js';
import { MFA_HEADER, parseMfaHeader, verifyTotp, type MfaContext, type MfaFactor, type RelyingParty } from '../auth/mfa/index.js';
import { isLapseError, LapseError } from '../domain/errors.js';
import type { Engine } from '../engine/index.js';
import type { Caller } from './authenticate.js';
import type { StepUpGuidance } from './problem.js';

export const STEP_UP_ENDPOINT = '/api/v1/mfa/step-up';
export const PASSKEY_OPTIONS_ENDPOINT = '/api/v1/mfa/passkeys/authentication-options';
/** Changing one's own factors needs a second factor verified this recently (when there is one). */
export const MANAGE_FACTORS_MAX_AGE_MS = 5 * 60_000;

/**
 * The WebAuthn relying party: the host of `auth.publicUrl`, or else of the address the request came
 * in on. NB. A forged Host header cannot make a passkey verify: the authenticator signs the hash of
 * the relying-party id its credential was made for, and the browser signs the page's real origin.
 */
export function relyingPartyFor(engine: Engine, request: FastifyRequest): RelyingParty | undefined {
  const base = engine.config.auth.publicUrl ?? (request.host ? `${request.protocol}://${request.host}` : undefined);
  if (!base) return undefined;
  try {
    const url = new URL(base);
    return { id: url.hostname, name: 'Lapse', origins: [url.origin] };
  } catch {
    return undefined;
  }
}

export function mfaContext(engine: Engine, auth: AuthService, request: FastifyRequest): MfaContext {
  return auth.mfaContext(request.log, relyingPartyFor(engine, request));
}

/** How the caller can complete a step-up: their factors, the endpoint, and the header for API tokens. */
export function stepUpGuidance(factors: readonly MfaFactor[]): StepUpGuidance {
  return {
    factors: [...factors],
    endpoint: STEP_UP_ENDPOINT,
    passkeyOptions: PASSKEY_OPTIONS_ENDPOINT,
    header: 'X-Lapse-MFA: totp <code>',
    ...(factors.length === 0 ? { enroll: '/api/v1/mfa' } : {}),
  };
}

function stepUpHint(factors: readonly MfaFactor[]): string {
  if (factors.length === 0) {
    return 'You have no second factor yet: enroll an authenticator app (POST /api/v1/mfa/totp) or a passkey, then step up.';
  }
  const ways = [
    ...(factors.includes('totp') ? ['POST /api/v1/mfa/step-up with {"totp":"<code>"}'] : []),
    ...(factors.includes('webauthn')
      ? [`a passkey (options from POST ${PASSKEY_OPTIONS_ENDPOINT}, assertion to POST ${STEP_UP_ENDPOINT} as {"webauthn":…})`]
      : []),
  ];
  const header = factors.includes('totp') ? ' With an API token (the CLI), repeat the request with the header `X-Lapse-MFA: totp <code>`.' : '';
  return `Verify a second factor: ${ways.join(', or ')}; then repeat the request.${header}`;
}

/** A step-up refusal that tells the client how to complete it. */
export async function stepUpRequired(auth: AuthService, principalId: string, message: string, where?: string): Promise<LapseError> {
  const factors = await auth.enrolledFactors(principalId);
  return new LapseError('mfa_step_up_required', message, { ...(where ? { where } : {}), hint: stepUpHint(factors), stepUp: stepUpGuidance(factors) });
}

/** Refuses unless the caller verified a second factor within `maxAgeMs` (by the database's clock). */
export async function requireFreshMfa(engine: Engine, auth: AuthService, caller: Caller, now: Date, maxAgeMs: number, what: string): Promise<void> {
  if (caller.mfaAt && now.getTime() - caller.mfaAt.getTime() <= maxAgeMs) return;
  await engine.recordSecurityEvent({ action: 'auth.step_up_required', actor: caller.principal.id, data: { what, maxAgeMs } });
  throw await stepUpRequired(auth, caller.principal.id, `${what} needs a second factor verified within the last ${Math.round(maxAgeMs / 60_000)} minutes`);
}

/**
 * Sensitive changes to one's own credentials (adding a factor, minting an API token) need the
 * second factor first, once the account has one: a stolen session or token must not add its own.
 */
export async function requireFreshMfaIfEnrolled(engine: Engine, auth: AuthService, caller: Caller, what: string): Promise<void> {
  if ((await auth.enrolledFactors(caller.principal.id)).length === 0) return;
  await requireFreshMfa(engine, auth, caller, await engine.read.now(), MANAGE_FACTORS_MAX_AGE_MS, what);
}

/** The caller each request authenticated as, for errors raised after authentication. */
const callers = new WeakMap<FastifyRequest, Caller>();

export function rememberCaller(request: FastifyRequest, caller: Caller): void {
  callers.set(request, caller);
}

/** The caller this request authenticated as, if it did (src/api/authorization.ts's callerOf). */
export function rememberedCaller(request: FastifyRequest): Caller | undefined {
  return callers.get(request);
}

/**
 * The engine refuses a policy's MFA freshness with `mfa_step_up_required` without knowing the
 * caller's factors; this adds them (and the ways to step up) before the problem is sent.
 */
export async function withStepUpGuidance(auth: AuthService, request: FastifyRequest, error: unknown): Promise<unknown> {
  if (!isLapseError(error, 'mfa_step_up_required') || error.details.stepUp !== undefined) return error;
  const caller = callers.get(request);
  if (!caller) return error;
  try {
    const factors = await auth.enrolledFactors(caller.principal.id);
    return new LapseError(
      error.code,
      error.message,
      { ...error.details, hint: `${error.details.hint ?? ''} ${stepUpHint(factors)}`.trim(), stepUp: stepUpGuidance(factors) },
      { cause: error },
    );
  } catch {
    return error;
  }
}

/**
 * `X-Lapse-MFA: totp <code>`: a second factor for this one request (API tokens have no session to
 * remember a step-up in). The code is spent like any other; a wrong one fails the request.
 */
export async function stepUpFromHeader(engine: Engine, auth: AuthService, request: FastifyRequest, caller: Caller): Promise<Caller> {
  const value = request.headers[MFA_HEADER];
  if (value === undefined) return caller;
  const parsed = typeof value === 'string' ? parseMfaHeader(value) : null;
  if (!parsed) {
    throw new LapseError('validation_failed', 'the X-Lapse-MFA header is not of the form "totp <6 digits>"', {
      where: 'X-Lapse-MFA',
      hint: 'Send e.g. `X-Lapse-MFA: totp 123456` with the current code from your authenticator app.',
    });
  }
  const context = mfaContext(engine, auth, request);
  const user = await auth.findMfaUser(caller.principal.id);
  const proof = await verifyTotp(context, user, parsed.code);
  return { ...caller, mfaAt: proof.at };
}
