import type { FastifyRequest } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { boundedText } from '../../domain/text.js';
import type { AuthService } from '../../auth/index.js';
import {
  authenticationResponseSchema,
  confirmTotp,
  enrollTotp,
  listPasskeys,
  passkeyAuthenticationOptions,
  passkeyNameSchema,
  passkeyRegistrationOptions,
  registerPasskey,
  registrationResponseSchema,
  removePasskey,
  removeTotp,
  TOTP_CODE,
  totpStatus,
  verifyPasskey,
  verifyTotp,
  type MfaProof,
} from '../../auth/mfa/index.js';
import { LapseError } from '../../domain/errors.js';
import type { Engine } from '../../engine/index.js';
import { type Caller } from '../authenticate.js';
import { problemSchema, stepUpGuidanceSchema } from '../problem.js';
import { MANAGE_FACTORS_MAX_AGE_MS, mfaContext, requireFreshMfa, requireFreshMfaIfEnrolled, stepUpGuidance } from '../step-up.js';
import { callerOf } from '../authorization.js';

const code = z.string().regex(TOTP_CODE, 'a code is 6 digits').describe('The current 6-digit code from the authenticator app');
const problems = { 400: problemSchema, 401: problemSchema, 403: problemSchema, 404: problemSchema, 409: problemSchema, 429: problemSchema };
const security: { [scheme: string]: string[] }[] = [{ bearer: [] }, { session: [] }];
const factorSchema = z.enum(['totp', 'webauthn']);
const base64url = z.string().max(1400);
const transports = z.array(z.string().max(32)).max(10);

const totpStatusSchema = z.object({
  id: z.string(),
  status: z.enum(['pending', 'active']),
  createdAt: z.string(),
  confirmedAt: z.string().nullable(),
  lastUsedAt: z.string().nullable(),
});
const passkeySchema = z.object({
  id: z.string(),
  name: z.string(),
  transports,
  backedUp: z.boolean(),
  createdAt: z.string(),
  lastUsedAt: z.string().nullable(),
});
const overviewSchema = z.object({
  factors: z.array(factorSchema),
  totp: totpStatusSchema.nullable(),
  passkeys: z.array(passkeySchema),
  mfaAt: z.string().nullable().describe('When this caller last verified a second factor (sessions), or null'),
  stepUp: stepUpGuidanceSchema,
});
const enrollmentSchema = z.object({
  factorId: z.string(),
  secret: z.string().describe('Base32 secret for manual entry; shown once'),
  uri: z.string().describe('otpauth:// URI for a QR code'),
});
const credentialDescriptor = z.object({ id: base64url, type: z.literal('public-key'), transports: transports.optional() });
const creationOptionsSchema = z
  .object({
    challenge: base64url,
    rp: z.object({ name: z.string(), id: z.string().optional() }),
    user: z.object({ id: base64url, name: z.string(), displayName: z.string() }),
    pubKeyCredParams: z.array(z.object({ alg: z.number(), type: z.literal('public-key') })),
    timeout: z.number().optional(),
    attestation: z.string().optional(),
    excludeCredentials: z.array(credentialDescriptor).optional(),
    authenticatorSelection: z
      .object({
        authenticatorAttachment: z.string().optional(),
        residentKey: z.string().optional(),
        requireResidentKey: z.boolean().optional(),
        userVerification: z.string().optional(),
      })
      .optional(),
    extensions: z.object({ credProps: z.boolean().optional() }).optional(),
    hints: z.array(z.string()).optional(),
  })
  .describe('PublicKeyCredentialCreationOptionsJSON: give to PublicKeyCredential.parseCreationOptionsFromJSON()');
const requestOptionsSchema = z
  .object({
    challenge: base64url,
    rpId: z.string().optional(),
    timeout: z.number().optional(),
    allowCredentials: z.array(credentialDescriptor).optional(),
    userVerification: z.string().optional(),
    hints: z.array(z.string()).optional(),
  })
  .describe('PublicKeyCredentialRequestOptionsJSON: give to PublicKeyCredential.parseRequestOptionsFromJSON()');
const proofSchema = z.object({ factor: factorSchema, mfaAt: z.string() });
const stepUpBody = z
  .object({ totp: code.optional(), webauthn: authenticationResponseSchema.optional() })
  .strict()
  .refine((body) => (body.totp === undefined) !== (body.webauthn === undefined), 'give exactly one of "totp" or "webauthn"');

const iso = (date: Date | null) => date?.toISOString() ?? null;

/** A verified second factor counts for the session it was verified in. */
async function rememberStepUp(auth: AuthService, caller: Caller, proof: MfaProof) {
  if (caller.sessionId) await auth.markSessionMfa(caller.sessionId, proof.at);
  return { factor: proof.factor, mfaAt: proof.at.toISOString() };
}

/**
 * `/api/v1/mfa`: the caller's own second factors (authenticator app, passkeys) and step-up. Every
 * route acts on the caller's own factors only; someone else's look like ones that do not exist.
 */
export function mfaRoutes(engine: Engine, auth: AuthService): FastifyPluginAsyncZod {
  return async (app) => {
    const as = async (request: FastifyRequest) => {
      const caller = callerOf(request);
      return { caller, user: await auth.findMfaUser(caller.principal.id), context: mfaContext(engine, auth, request) };
    };

    app.get(
      '/api/v1/mfa',
      {
        config: { auth: { scope: 'read' } },
        schema: { tags: ['mfa'], summary: 'My second factors and how to step up', security, response: { 200: overviewSchema, ...problems } },
      },
      async (request) => {
        const { caller, user, context } = await as(request);
        const [factors, totp, passkeys] = await Promise.all([auth.enrolledFactors(user.name), totpStatus(context, user), listPasskeys(context, user)]);
        return {
          factors,
          totp: totp && {
            id: totp.id,
            status: totp.status,
            createdAt: totp.createdAt.toISOString(),
            confirmedAt: iso(totp.confirmedAt),
            lastUsedAt: iso(totp.lastUsedAt),
          },
          passkeys: passkeys.map((p) => ({ ...p, transports: [...p.transports], createdAt: p.createdAt.toISOString(), lastUsedAt: iso(p.lastUsedAt) })),
          mfaAt: iso(caller.mfaAt),
          stepUp: stepUpGuidance(factors),
        };
      },
    );

    app.post(
      '/api/v1/mfa/totp',
      {
        config: { auth: { scope: 'request' } },
        schema: {
          tags: ['mfa'],
          summary: 'Start enrolling an authenticator app (pending until confirmed)',
          description:
            'Returns a new secret once. Replaces a pending enrollment; refused while one is active. Needs a fresh step-up when you already have a factor.',
          security,
          response: { 201: enrollmentSchema, ...problems },
        },
      },
      async (request, reply) => {
        const { caller, user, context } = await as(request);
        await requireFreshMfaIfEnrolled(engine, auth, caller, 'adding an authenticator app');
        const enrollment = await enrollTotp(context, user, context.relyingParty?.name ?? 'Lapse');
        return reply.code(201).header('cache-control', 'no-store').send(enrollment);
      },
    );

    app.post(
      '/api/v1/mfa/totp/confirm',
      {
        config: { auth: { scope: 'request' } },
        schema: {
          tags: ['mfa'],
          summary: 'Confirm an authenticator app with its first code',
          security,
          body: z.object({ code }).strict(),
          response: { 200: z.object({ factor: z.literal('totp'), status: z.literal('active') }), ...problems },
        },
      },
      async (request) => {
        const { user, context } = await as(request);
        await confirmTotp(context, user, request.body.code);
        return { factor: 'totp' as const, status: 'active' as const };
      },
    );

    app.delete(
      '/api/v1/mfa/totp',
      {
        config: { auth: { scope: 'request' } },
        schema: { tags: ['mfa'], summary: 'Remove my authenticator app (needs a fresh step-up)', security, response: { 204: z.null(), ...problems } },
      },
      async (request, reply) => {
        const { caller, user, context } = await as(request);
        await requireFreshMfa(engine, auth, caller, await engine.read.now(), MANAGE_FACTORS_MAX_AGE_MS, 'removing an authenticator app');
        await removeTotp(context, user);
        return reply.code(204).send(null);
      },
    );

    app.post(
      '/api/v1/mfa/passkeys/registration-options',
      {
        config: { auth: { scope: 'request' } },
        schema: {
          tags: ['mfa'],
          summary: 'Options for navigator.credentials.create() (a single-use challenge, valid 5 minutes)',
          security,
          response: { 200: creationOptionsSchema, ...problems },
        },
      },
      async (request) => {
        const { caller, user, context } = await as(request);
        await requireFreshMfaIfEnrolled(engine, auth, caller, 'adding a passkey');
        return passkeyRegistrationOptions(context, user);
      },
    );

    app.post(
      '/api/v1/mfa/passkeys',
      {
        config: { auth: { scope: 'request' } },
        schema: {
          tags: ['mfa'],
          summary: 'Register a passkey from the result of navigator.credentials.create()',
          security,
          body: z.object({ name: passkeyNameSchema, response: registrationResponseSchema }).strict(),
          response: { 201: passkeySchema, ...problems },
        },
      },
      async (request, reply) => {
        const { user, context } = await as(request);
        const passkey = await registerPasskey(context, user, request.body.name, request.body.response);
        return reply
          .code(201)
          .send({ ...passkey, transports: [...passkey.transports], createdAt: passkey.createdAt.toISOString(), lastUsedAt: iso(passkey.lastUsedAt) });
      },
    );

    app.delete(
      '/api/v1/mfa/passkeys/:id',
      {
        config: { auth: { scope: 'request' } },
        schema: {
          tags: ['mfa'],
          summary: 'Remove one of my passkeys (needs a fresh step-up)',
          security,
          params: z.object({ id: boundedText(64).min(1) }),
          response: { 204: z.null(), ...problems },
        },
      },
      async (request, reply) => {
        const { caller, user, context } = await as(request);
        await requireFreshMfa(engine, auth, caller, await engine.read.now(), MANAGE_FACTORS_MAX_AGE_MS, 'removing a passkey');
        await removePasskey(context, user, request.params.id);
        return reply.code(204).send(null);
      },
    );

    app.post(
      '/api/v1/mfa/passkeys/authentication-options',
      {
        config: { auth: { scope: 'request' } },
        schema: {
          tags: ['mfa'],
          summary: 'Options for navigator.credentials.get() to step up with a passkey (single-use challenge, 5 minutes)',
          security,
          response: { 200: requestOptionsSchema, ...problems },
        },
      },
      async (request) => {
        const { user, context } = await as(request);
        return passkeyAuthenticationOptions(context, user);
      },
    );

    app.post(
      '/api/v1/mfa/step-up',
      {
        config: { auth: { scope: 'request' } },
        schema: {
          tags: ['mfa'],
          summary: 'Verify a second factor for this session (step-up)',
          description:
            'Body: {"totp":"123456"} or {"webauthn":<navigator.credentials.get() result as JSON>}. API tokens have no session: send `X-Lapse-MFA: totp <code>` with the request that needs it instead.',
          security: [{ session: [] }],
          body: stepUpBody,
          response: { 200: proofSchema, ...problems },
        },
      },
      async (request) => {
        const { caller, user, context } = await as(request);
        if (caller.via !== 'session') {
          throw new LapseError('validation_failed', 'an API token has no session to remember a step-up in', {
            where: 'Authorization',
            hint: 'Send `X-Lapse-MFA: totp <code>` with the request that needs the step-up; nothing was verified or spent.',
          });
        }
        const proof =
          request.body.totp !== undefined ? await verifyTotp(context, user, request.body.totp) : await verifyPasskey(context, user, request.body.webauthn!);
        return rememberStepUp(auth, caller, proof);
      },
    );
  };
}
