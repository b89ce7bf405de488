import { randomBytes } from 'node:crypto';
import type { PasswordAlphabet } from '../config/types.js';

const LETTERS_AND_DIGITS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/**
 * The characters of each alphabet. NB. `symbols` leaves out quotes, backslash, space, `$`, `%`,
 * `&` and `>`: characters some clients, shells, URLs or ACL syntaxes (Redis `>password`) treat specially.
 */
export const ALPHABET_CHARACTERS: Readonly<Record<PasswordAlphabet, string>> = {
  alphanumeric: LETTERS_AND_DIGITS,
  base64url: `${LETTERS_AND_DIGITS}-_`,
  symbols: `${LETTERS_AND_DIGITS}!#*+,-.:;=?@^_~`,
};

/** A password of `length` characters drawn uniformly from the alphabet (rejection sampling: no modulo bias). */
export function generatePassword(policy: { readonly length: number; readonly alphabet: PasswordAlphabet }): string {
  const characters = ALPHABET_CHARACTERS[policy.alphabet];
  const limit = 256 - (256 % characters.length);
  let password = '';
  while (password.length < policy.length) {
    for (const byte of randomBytes(policy.length * 2)) {
      if (byte >= limit) continue;
      password += characters[byte % characters.length];
      if (password.length === policy.length) break;
    }
  }
  return password;
}
