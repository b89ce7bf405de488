import {
  generateAuthenticationOptions,
  generateRegistrationOptions,
  verifyAuthenticationResponse,
  verifyRegistrationResponse,
  type AuthenticationResponseJSON,
  type AuthenticatorTransportFuture,
  type PublicKeyCredentialCreationOptionsJSON,
  type PublicKeyCredentialRequestOptionsJSON,
  type RegistrationResponseJSON,
} from '@simplewebauthn/server';
import { z } from 'zod';
import { boundedText } from '../../domain/text.js';
import { LapseError } from '../../domain/errors.js';
import { newId } from '../../domain/ids.js';
import {
  deleteUserPasskey,
  getUserPasskeyByCredential,
  insertMfaChallenge,
  insertPasskey,
  passkeyCredentialExists,
  passkeysOfUser,
  recordPasskeyUse,
  takeMfaChallenge,
  type Executor,
} from '../../store/index.js';
import { clearFailures, guardAttempts, recordFailure } from './attempts.js';
import { recorded, Refusal, type MfaContext, type MfaProof, type MfaUnit, type MfaUser, type RelyingParty } from './context.js';

/** A challenge answers within this long, or not at all (the browser is told the same timeout). */
export const CHALLENGE_TTL_MS = 5 * 60_000;
export const MAX_PASSKEYS_PER_USER = 20;

const base64url = (max: number) =>
  z
    .string()
    .min(1)
    .max(max)
    .regex(/^[A-Za-z0-9_-]+$/, 'base64url');
const transports = z.array(z.string().max(32)).max(10);
const extensionResults = z
  .record(z.string().max(64), z.unknown())
  .refine((value) => JSON.stringify(value).length <= 4096, 'at most 4 KB')
  .default({});

/** What `PublicKeyCredential.toJSON()` gives after `navigator.credentials.create()`. Bounded. */
export const registrationResponseSchema = z
  .object({
    id: base64url(1400),
    rawId: base64url(1400),
    type: z.literal('public-key'),
    authenticatorAttachment: z.enum(['platform', 'cross-platform']).optional(),
    clientExtensionResults: extensionResults,
    response: z.object({
      clientDataJSON: base64url(4096),
      attestationObject: base64url(32_768),
      authenticatorData: base64url(8192).optional(),
      transports: transports.optional(),
      publicKeyAlgorithm: z.number().int().optional(),
      publicKey: base64url(4096).optional(),
    }),
  })
  .meta({ description: 'The result of navigator.credentials.create() as JSON (PublicKeyCredential.toJSON())' });

/** What `PublicKeyCredential.toJSON()` gives after `navigator.credentials.get()`. Bounded. */
export const authenticationResponseSchema = z
  .object({
    id: base64url(1400),
    rawId: base64url(1400),
    type: z.literal('public-key'),
    authenticatorAttachment: z.enum(['platform', 'cross-platform']).optional(),
    clientExtensionResults: extensionResults,
    response: z.object({
      clientDataJSON: base64url(4096),
      authenticatorData: base64url(8192),
      signature: base64url(2048),
      userHandle: base64url(1024).optional(),
    }),
  })
  .meta({ description: 'The result of navigator.credentials.get() as JSON (PublicKeyCredential.toJSON())' });

export const passkeyNameSchema = boundedText(100).trim().min(1);

export type RegistrationResponse = z.infer<typeof registrationResponseSchema>;

const KNOWN_TRANSPORTS = new Set<string>(['ble', 'cable', 'hybrid', 'internal', 'nfc', 'smart-card', 'usb']);
/** Transports a newer browser names that this library does not know are dropped, not refused. */
function knownTransports(values: readonly string[] | undefined): AuthenticatorTransportFuture[] | undefined {
  return values?.filter((t): t is AuthenticatorTransportFuture => KNOWN_TRANSPORTS.has(t));
}

function relyingPartyOf(context: MfaContext): RelyingParty {
  const party = context.relyingParty;
  if (!party) {
    throw new LapseError('config_invalid', "passkeys need the server's public URL, which is not known", {
      where: 'auth.publicUrl',
      hint: 'Set auth.publicUrl in lapse.yaml to the URL people use to reach Lapse (see docs/authentication.md).',
    });
  }
  return party;
}

async function userPasskeys(db: Executor, user: MfaUser) {
  return passkeysOfUser(db, user.id);
}

async function storeChallenge(unit: MfaUnit, user: MfaUser, purpose: 'registration' | 'authentication', challenge: string): Promise<void> {
  // Expired challenges are garbage: cleared as new ones are issued.
  await insertMfaChallenge(
    unit.tx,
    { challenge, user_id: user.id, purpose, created_at: unit.now, expires_at: new Date(unit.now.getTime() + CHALLENGE_TTL_MS) },
    unit.now,
  );
}

/** The challenge the browser signed, from clientDataJSON (the library checks it matches again). */
function challengeIn(clientDataJSON: string): string | null {
  try {
    const parsed: unknown = JSON.parse(Buffer.from(clientDataJSON, 'base64url').toString('utf8'));
    const challenge = (parsed as { challenge?: unknown }).challenge;
    return typeof challenge === 'string' && challenge.length <= 512 ? challenge : null;
  } catch {
    return null;
  }
}

/**
 * Spends the challenge a response answers: it must be one this server issued to this user for this
 * purpose, unused and unexpired. Deleted on first presentation, whatever the outcome.
 */
async function spendChallenge(unit: MfaUnit, user: MfaUser, purpose: 'registration' | 'authentication', clientDataJSON: string): Promise<string | Refusal> {
  const challenge = challengeIn(clientDataJSON);
  const spent = challenge ? await takeMfaChallenge(unit.tx, user.id, purpose, challenge) : undefined;
  if (!challenge || !spent) return recordFailure(unit, user, 'webauthn', 'challenge_unknown', { purpose });
  if (new Date(spent.expires_at) <= unit.now) return recordFailure(unit, user, 'webauthn', 'challenge_expired', { purpose });
  return challenge;
}

/** Options for `navigator.credentials.create()`; the challenge is stored for one use. */
export async function passkeyRegistrationOptions(context: MfaContext, user: MfaUser): Promise<PublicKeyCredentialCreationOptionsJSON> {
  const party = relyingPartyOf(context);
  return recorded(context, async (unit) => {
    const existing = await userPasskeys(unit.tx, user);
    if (existing.length >= MAX_PASSKEYS_PER_USER) {
      return new Refusal(
        new LapseError('conflict', `${user.name} already has ${existing.length} passkeys, the most one user may register`, {
          where: 'passkeys',
          hint: 'Remove one you no longer use.',
        }),
      );
    }
    const options = await generateRegistrationOptions({
      rpName: party.name,
      rpID: party.id,
      userName: user.name,
      // NB. The user handle is the opaque users-row id, not the name: it is stored on the authenticator.
      userID: new TextEncoder().encode(user.id),
      timeout: CHALLENGE_TTL_MS,
      attestationType: 'none',
      excludeCredentials: existing.map((c) => ({ id: c.credential_id, transports: c.transports as AuthenticatorTransportFuture[] })),
      authenticatorSelection: { residentKey: 'preferred', userVerification: 'preferred' },
    });
    await storeChallenge(unit, user, 'registration', options.challenge);
    return options;
  });
}

export interface Passkey {
  readonly id: string;
  readonly name: string;
  readonly transports: readonly string[];
  readonly backedUp: boolean;
  readonly createdAt: Date;
  readonly lastUsedAt: Date | null;
}

function toPasskey(row: Awaited<ReturnType<typeof userPasskeys>>[number]): Passkey {
  return {
    id: row.id,
    name: row.name,
    transports: row.transports,
    backedUp: row.backed_up,
    createdAt: new Date(row.created_at),
    lastUsedAt: row.last_used_at && new Date(row.last_used_at),
  };
}

/** Verifies `navigator.credentials.create()`'s result against a challenge we issued and stores the passkey. */
export async function registerPasskey(context: MfaContext, user: MfaUser, name: string, presented: RegistrationResponse): Promise<Passkey> {
  const response: RegistrationResponseJSON = { ...presented, response: { ...presented.response, transports: knownTransports(presented.response.transports) } };
  const party = relyingPartyOf(context);
  return recorded(context, async (unit) => {
    const locked = await guardAttempts(unit, user, 'webauthn');
    if (locked) return locked;
    const challenge = await spendChallenge(unit, user, 'registration', response.response.clientDataJSON);
    if (challenge instanceof Refusal) return challenge;
    let verification;
    try {
      verification = await verifyRegistrationResponse({
        response,
        expectedChallenge: challenge,
        expectedOrigin: [...party.origins],
        expectedRPID: party.id,
        requireUserVerification: false,
      });
    } catch (error) {
      context.logger.warn({ event: 'auth.mfa_failed', user: user.name, err: error }, 'passkey registration did not verify');
      return recordFailure(unit, user, 'webauthn', 'bad_assertion', { purpose: 'registration' });
    }
    if (!verification.verified) return recordFailure(unit, user, 'webauthn', 'bad_assertion', { purpose: 'registration' });
    const info = verification.registrationInfo;
    const taken = await passkeyCredentialExists(unit.tx, info.credential.id);
    if (taken) return new Refusal(new LapseError('conflict', 'that passkey is already registered', { where: 'response.id' }));
    const row = {
      id: newId('passkey'),
      user_id: user.id,
      credential_id: info.credential.id,
      name,
      public_key: info.credential.publicKey,
      counter: String(info.credential.counter),
      transports: JSON.stringify(info.credential.transports ?? []),
      device_type: info.credentialDeviceType,
      backed_up: info.credentialBackedUp,
      created_at: unit.now,
      last_used_at: null,
    };
    await insertPasskey(unit.tx, row);
    await clearFailures(unit, user);
    unit.audit({
      action: 'auth.mfa_passkey_registered',
      actor: user.name,
      subject: row.id,
      data: { name, deviceType: info.credentialDeviceType, backedUp: info.credentialBackedUp, aaguid: info.aaguid },
    });
    return { id: row.id, name, transports: info.credential.transports ?? [], backedUp: row.backed_up, createdAt: unit.now, lastUsedAt: null };
  });
}

/** Options for `navigator.credentials.get()`, limited to the user's own passkeys. */
export async function passkeyAuthenticationOptions(context: MfaContext, user: MfaUser): Promise<PublicKeyCredentialRequestOptionsJSON> {
  const party = relyingPartyOf(context);
  return recorded(context, async (unit) => {
    const passkeys = await userPasskeys(unit.tx, user);
    if (passkeys.length === 0) {
      return new Refusal(
        new LapseError('not_found', `${user.name} has no passkey registered`, {
          where: 'passkeys',
          hint: 'Register one first, or step up with an authenticator-app code.',
        }),
      );
    }
    const options = await generateAuthenticationOptions({
      rpID: party.id,
      timeout: CHALLENGE_TTL_MS,
      userVerification: 'preferred',
      allowCredentials: passkeys.map((c) => ({ id: c.credential_id, transports: c.transports as AuthenticatorTransportFuture[] })),
    });
    await storeChallenge(unit, user, 'authentication', options.challenge);
    return options;
  });
}

/**
 * Verifies `navigator.credentials.get()`'s result: our unspent challenge, one of this user's
 * passkeys, a valid signature, and a signature counter that moved forward.
 */
export async function verifyPasskey(context: MfaContext, user: MfaUser, response: AuthenticationResponseJSON): Promise<MfaProof> {
  const party = relyingPartyOf(context);
  return recorded(context, async (unit) => {
    const locked = await guardAttempts(unit, user, 'webauthn');
    if (locked) return locked;
    const challenge = await spendChallenge(unit, user, 'authentication', response.response.clientDataJSON);
    if (challenge instanceof Refusal) return challenge;
    const stored = await getUserPasskeyByCredential(unit.tx, user.id, response.id);
    if (!stored) return recordFailure(unit, user, 'webauthn', 'unknown_passkey');
    let verification;
    try {
      verification = await verifyAuthenticationResponse({
        response,
        expectedChallenge: challenge,
        expectedOrigin: [...party.origins],
        expectedRPID: party.id,
        credential: {
          id: stored.credential_id,
          publicKey: new Uint8Array(stored.public_key),
          counter: Number(stored.counter),
          transports: stored.transports as AuthenticatorTransportFuture[],
        },
        requireUserVerification: false,
      });
    } catch (error) {
      // NB. The library compares counters before it checks the signature, so a regression is not
      // proof of a clone by itself: refuse and alert, but do not disable the passkey (that would
      // let anyone who saw its id lock its owner out).
      const regression = error instanceof Error && /counter value/i.test(error.message);
      context.logger.warn(
        { event: regression ? 'auth.mfa_counter_regression' : 'auth.mfa_failed', user: user.name, passkeyId: stored.id, err: error },
        'passkey assertion refused',
      );
      return recordFailure(unit, user, 'webauthn', regression ? 'counter_regression' : 'bad_assertion', { passkeyId: stored.id });
    }
    if (!verification.verified) return recordFailure(unit, user, 'webauthn', 'bad_assertion', { passkeyId: stored.id });
    await recordPasskeyUse(unit.tx, stored.id, {
      counter: verification.authenticationInfo.newCounter,
      backedUp: verification.authenticationInfo.credentialBackedUp,
      at: unit.now,
    });
    await clearFailures(unit, user);
    unit.audit({
      action: 'auth.mfa_verified',
      actor: user.name,
      subject: stored.id,
      data: { factor: 'webauthn', userVerified: verification.authenticationInfo.userVerified },
    });
    return { factor: 'webauthn' as const, at: unit.now };
  });
}

export async function listPasskeys(context: Pick<MfaContext, 'db'>, user: MfaUser): Promise<Passkey[]> {
  return (await userPasskeys(context.db, user)).map(toPasskey);
}

/** Removes one of the user's passkeys; someone else's looks like one that does not exist. */
export async function removePasskey(context: MfaContext, user: MfaUser, passkeyId: string): Promise<void> {
  return recorded(context, async (unit) => {
    const removed = await deleteUserPasskey(unit.tx, user.id, passkeyId);
    if (!removed) {
      unit.audit({ action: 'auth.mfa_passkey_remove_refused', actor: user.name, subject: passkeyId.slice(0, 64), data: { reason: 'not found or not theirs' } });
      return new Refusal(new LapseError('not_found', `no passkey ${passkeyId.slice(0, 64)}`, { where: 'id', hint: 'List yours with GET /api/v1/mfa.' }));
    }
    unit.audit({ action: 'auth.mfa_passkey_removed', actor: user.name, subject: removed.id, data: { name: removed.name, severity: 'medium' } });
    return undefined;
  });
}
