import { timingSafeEqual } from 'node:crypto';
import { authenticator } from 'otplib';
import { LapseError } from '../../domain/errors.js';
import { newId } from '../../domain/ids.js';
import { acceptTotpStep, deleteTotpFactor, getTotpFactor, getTotpFactorIn, insertTotpFactor } from '../../store/index.js';
import { clearFailures, guardAttempts, recordFailure } from './attempts.js';
import { recorded, Refusal, type MfaContext, type MfaProof, type MfaUnit, type MfaUser } from './context.js';

/**
 * RFC 6238 as every authenticator app implements it: HMAC-SHA-1, 6 digits, 30-second steps. One
 * step either side is accepted for clock drift and typing time.
 */
export const TOTP_STEP_SECONDS = 30;
export const TOTP_WINDOW = 1;
/** 160-bit secrets, the HMAC-SHA-1 key size RFC 4226 recommends. */
const SECRET_BYTES = 20;
export const TOTP_CODE = /^[0-9]{6}$/;

function totpAt(now: Date) {
  return authenticator.clone({ step: TOTP_STEP_SECONDS, digits: 6, epoch: now.getTime() });
}

/**
 * The time-step a code belongs to (within the window around `now`), or null when it matches none.
 * NB. Every candidate is compared, in constant time, so the answer's timing says nothing about
 * which digits or which step matched; if two steps share a code the later one counts.
 */
export function totpStepOf(secret: string, code: string, now: Date): number | null {
  if (!TOTP_CODE.test(code)) return null;
  const presented = Buffer.from(code);
  const current = Math.floor(now.getTime() / 1000 / TOTP_STEP_SECONDS);
  let matched: number | null = null;
  for (let step = current - TOTP_WINDOW; step <= current + TOTP_WINDOW; step++) {
    const expected = Buffer.from(totpCodeAt(secret, new Date(step * TOTP_STEP_SECONDS * 1000)));
    if (timingSafeEqual(expected, presented)) matched = step;
  }
  return matched;
}

/** The code an authenticator app shows at `at` (tests and `lapse` tooling). */
export function totpCodeAt(secret: string, at: Date): string {
  return totpAt(at).generate(secret);
}

export interface TotpEnrollment {
  readonly factorId: string;
  /** Base32, for manual entry; shown once, stored sealed. */
  readonly secret: string;
  /** otpauth://totp/… for a QR code. */
  readonly uri: string;
}

const sealContext = (user: MfaUser) => `totp:${user.id}`;

/**
 * Starts TOTP enrollment: a new secret, pending until `confirmTotp` sees a code from it. A pending
 * secret is replaced by a new enrollment; an active one must be removed first (which needs a fresh MFA).
 */
export async function enrollTotp(context: MfaContext, user: MfaUser, issuer: string): Promise<TotpEnrollment> {
  return recorded(context, async (unit) => {
    const existing = await getTotpFactor(unit.tx, user.id);
    if (existing?.status === 'active') {
      return new Refusal(
        new LapseError('conflict', `${user.name} already has an authenticator app enrolled`, {
          where: 'totp',
          hint: 'Remove it first (DELETE /api/v1/mfa/totp, which needs a fresh MFA), then enroll again.',
        }),
      );
    }
    const secret = authenticator.generateSecret(SECRET_BYTES);
    const factorId = newId('totp');
    const sealed = context.sealer.seal(secret, sealContext(user));
    await insertTotpFactor(
      unit.tx,
      {
        id: factorId,
        user_id: user.id,
        secret_sealed: sealed,
        status: 'pending',
        last_step: null,
        created_at: unit.now,
        confirmed_at: null,
        last_used_at: null,
      },
      existing?.id,
    );
    unit.audit({ action: 'auth.mfa_totp_enrolling', actor: user.name, subject: factorId, data: { replacedPendingId: existing?.id ?? null } });
    return { factorId, secret, uri: authenticator.keyuri(user.name, issuer, secret) };
  });
}

/** Activates a pending TOTP factor with its first code (which counts as an MFA, and is spent). */
export async function confirmTotp(context: MfaContext, user: MfaUser, code: string): Promise<MfaProof> {
  return checkTotp(context, user, code, 'pending');
}

/** Checks a code against the user's active TOTP factor: once per code, within the attempt limit. */
export async function verifyTotp(context: MfaContext, user: MfaUser, code: string): Promise<MfaProof> {
  return checkTotp(context, user, code, 'active');
}

async function checkTotp(context: MfaContext, user: MfaUser, code: string, status: 'pending' | 'active'): Promise<MfaProof> {
  return recorded(context, async (unit) => {
    const locked = await guardAttempts(unit, user, 'totp');
    if (locked) return locked;
    const factor = await getTotpFactorIn(unit.tx, user.id, status);
    if (!factor) {
      if (status === 'pending') {
        return new Refusal(
          new LapseError('not_found', 'there is no authenticator-app enrollment waiting for confirmation', {
            where: 'totp',
            hint: 'Start one with POST /api/v1/mfa/totp.',
          }),
        );
      }
      return recordFailure(unit, user, 'totp', 'no_factor');
    }
    const secret = context.sealer.open(factor.secret_sealed, sealContext(user));
    const step = totpStepOf(secret, code, unit.now);
    if (step === null) return recordFailure(unit, user, 'totp', 'wrong_code', { factorId: factor.id });
    // NB. Conditional on the stored step: of two concurrent uses of one code, one updates a row
    // and the other sees a replay; a code older than the last accepted one is refused as well.
    const accepted = await acceptTotpStep(unit.tx, factor.id, step, unit.now, status === 'pending');
    if (!accepted) {
      context.logger.warn({ event: 'auth.mfa_replay', user: user.name, factorId: factor.id, step }, 'refused a replayed TOTP code');
      return recordFailure(unit, user, 'totp', 'replay', { factorId: factor.id });
    }
    await clearFailures(unit, user);
    unit.audit({
      action: status === 'pending' ? 'auth.mfa_totp_enrolled' : 'auth.mfa_verified',
      actor: user.name,
      subject: factor.id,
      data: { factor: 'totp' },
    });
    return { factor: 'totp' as const, at: unit.now };
  });
}

/** Removes the user's TOTP factor (active or pending). The caller checks MFA freshness first. */
export async function removeTotp(context: MfaContext, user: MfaUser): Promise<void> {
  return recorded(context, async (unit: MfaUnit) => {
    const removed = await deleteTotpFactor(unit.tx, user.id);
    if (!removed) return new Refusal(new LapseError('not_found', `${user.name} has no authenticator app enrolled`, { where: 'totp' }));
    unit.audit({ action: 'auth.mfa_totp_removed', actor: user.name, subject: removed.id, data: { status: removed.status, severity: 'medium' } });
    return undefined;
  });
}

export interface TotpStatus {
  readonly id: string;
  readonly status: 'pending' | 'active';
  readonly createdAt: Date;
  readonly confirmedAt: Date | null;
  readonly lastUsedAt: Date | null;
}

export async function totpStatus(context: Pick<MfaContext, 'db'>, user: MfaUser): Promise<TotpStatus | null> {
  const row = await getTotpFactor(context.db, user.id);
  return row
    ? {
        id: row.id,
        status: row.status,
        createdAt: new Date(row.created_at),
        confirmedAt: row.confirmed_at && new Date(row.confirmed_at),
        lastUsedAt: row.last_used_at && new Date(row.last_used_at),
      }
    : null;
}
