import { LapseError } from '../../domain/errors.js';
import { clearMfaFailures, countMfaFailures, lockUser, recordMfaFailure } from '../../store/index.js';
import { Refusal, type MfaFactor, type MfaUnit, type MfaUser } from './context.js';

/**
 * NB. A 6-digit code accepted in a ±1 step window has 3 chances in 10^6 per guess: 10 failures per
 * 15 minutes allow 960 guesses a day, about 1 chance in 350 per day of non-stop guessing, each
 * guess audited and every lockout an alert. Every failure counts (wrong code, replay, unknown
 * passkey, spent challenge), whatever the factor.
 */
export const MFA_MAX_FAILURES = 10;
export const MFA_FAILURE_WINDOW_MS = 15 * 60_000;

export type FailureReason =
  'wrong_code' | 'replay' | 'no_factor' | 'unknown_passkey' | 'bad_assertion' | 'counter_regression' | 'challenge_unknown' | 'challenge_expired';

const SEVERITY: Record<FailureReason, 'medium' | 'high'> = {
  wrong_code: 'medium',
  replay: 'high',
  no_factor: 'medium',
  unknown_passkey: 'high',
  bad_assertion: 'high',
  counter_regression: 'high',
  challenge_unknown: 'high',
  challenge_expired: 'medium',
};

const MESSAGES: Record<FailureReason, string> = {
  wrong_code: 'the code is not correct',
  replay: 'that code was already used; wait for the next one',
  no_factor: 'there is no confirmed factor of that kind to check against',
  unknown_passkey: 'that passkey is not registered to you',
  bad_assertion: 'the passkey response did not verify',
  counter_regression: "the passkey's signature counter went backwards (a cloned authenticator?)",
  challenge_unknown: 'the challenge is unknown or was already used',
  challenge_expired: 'the challenge expired',
};

function failuresSince(unit: MfaUnit, user: MfaUser): Promise<number> {
  return countMfaFailures(unit.tx, user.id, new Date(unit.now.getTime() - MFA_FAILURE_WINDOW_MS));
}

/**
 * Serialises one user's MFA checks (row lock) and refuses while locked out, so parallel guesses
 * cannot slip past the limit. Returns a Refusal (audited) when locked.
 */
export async function guardAttempts(unit: MfaUnit, user: MfaUser, factor: MfaFactor): Promise<Refusal | undefined> {
  await lockUser(unit.tx, user.id);
  const n = await failuresSince(unit, user);
  if (n < MFA_MAX_FAILURES) return undefined;
  unit.audit({ action: 'auth.mfa_refused', actor: user.name, data: { factor, reason: 'locked_out', severity: 'high' } });
  return new Refusal(lockedOut());
}

function lockedOut(): LapseError {
  return new LapseError('rate_limited', `too many failed MFA attempts: locked for up to ${MFA_FAILURE_WINDOW_MS / 60_000} minutes`, {
    hint: 'Wait, then try again with a fresh code. If these attempts were not yours, tell your security team.',
  });
}

/** Counts a failure, audits it (with severity), and locks the user out at the limit. */
export async function recordFailure(
  unit: MfaUnit,
  user: MfaUser,
  factor: MfaFactor,
  reason: FailureReason,
  data: Record<string, unknown> = {},
): Promise<Refusal> {
  // Rows outside the window count for nothing: this user's are dropped as new ones arrive.
  await recordMfaFailure(unit.tx, { userId: user.id, factor, at: unit.now }, new Date(unit.now.getTime() - MFA_FAILURE_WINDOW_MS));
  const action = reason === 'replay' ? 'auth.mfa_replay' : reason === 'counter_regression' ? 'auth.mfa_counter_regression' : 'auth.mfa_failed';
  unit.audit({ action, actor: user.name, data: { factor, reason, severity: SEVERITY[reason], ...data } });
  const n = await failuresSince(unit, user);
  if (n >= MFA_MAX_FAILURES) {
    unit.audit({ action: 'auth.mfa_locked', actor: user.name, data: { factor, failures: n, windowMs: MFA_FAILURE_WINDOW_MS, severity: 'high' } });
    return new Refusal(lockedOut());
  }
  return new Refusal(
    new LapseError('mfa_failed', `MFA ${factor === 'totp' ? 'code' : 'passkey'} refused: ${MESSAGES[reason]}`, {
      where: factor,
      reason,
      hint: factor === 'totp' ? 'Enter the current 6-digit code from your authenticator app.' : 'Ask for new options and try the passkey again.',
    }),
  );
}

/** A success clears the count: lockout is for guessing, not for the odd typo over a day. */
export async function clearFailures(unit: MfaUnit, user: MfaUser): Promise<void> {
  await clearMfaFailures(unit.tx, user.id);
}
