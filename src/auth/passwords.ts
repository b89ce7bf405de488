import { hash, verify } from '@node-rs/argon2';
import { LapseError } from '../domain/errors.js';

/**
 * argon2id with OWASP's first recommended setting (19 MiB, 2 passes, 1 lane): about 20 ms per
 * hash on the 2-core test machine (measured: m=19456,t=2 20.6 ms; m=64 MiB,t=3 76 ms). Memory
 * per hash stays small enough that concurrent sign-ins cannot exhaust the server, and the login
 * limits bound guessing long before the hash cost matters. Parameters live in the stored hash, so
 * raising them later only affects new hashes.
 */
// NB. 2 is Algorithm.Argon2id (an ambient const enum, which verbatimModuleSyntax cannot import).
const PARAMS = { algorithm: 2, memoryCost: 19_456, timeCost: 2, parallelism: 1 } as const;

export const PASSWORD_MIN_LENGTH = 12;
/** Hashing cost grows with length only slightly, but an unbounded input is still a gift to attackers. */
export const PASSWORD_MAX_LENGTH = 1024;

/** The policy: 12 to 1024 characters, not only whitespace. Length beats composition rules (NIST 800-63B). */
export function checkPasswordPolicy(password: string, where = 'password'): void {
  if (password.length < PASSWORD_MIN_LENGTH || password.length > PASSWORD_MAX_LENGTH) {
    throw new LapseError('validation_failed', `a password is ${PASSWORD_MIN_LENGTH} to ${PASSWORD_MAX_LENGTH} characters (this one has ${password.length})`, {
      where,
      hint: 'Use a long passphrase; a password manager can generate one.',
    });
  }
  if (password.trim().length === 0) throw new LapseError('validation_failed', 'a password cannot be only whitespace', { where });
}

export function hashPassword(password: string): Promise<string> {
  return hash(password, PARAMS);
}

let dummyHash: Promise<string> | undefined;

/**
 * Checks a password against a stored hash. With no hash (unknown user, or a user without a
 * password) it still runs one verification against a dummy, so the answer takes about as long
 * either way and does not reveal which accounts exist.
 */
export async function verifyPassword(stored: string | null, password: string): Promise<boolean> {
  if (password.length > PASSWORD_MAX_LENGTH) return false;
  if (stored === null) {
    dummyHash ??= hashPassword('lapse-dummy-password-for-timing');
    await verify(await dummyHash, password).catch(() => false);
    return false;
  }
  return verify(stored, password).catch(() => false);
}
