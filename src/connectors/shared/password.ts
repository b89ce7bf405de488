import { randomBytes } from 'node:crypto';

/**
 * A password for an ephemeral account: 24 random bytes as base64url (32 characters, 192 bits).
 * The alphabet [A-Za-z0-9_-] needs no escaping in any SQL literal, URL or shell word, so the
 * password is also safe to print in a ready-to-paste command.
 */
export function newAccountPassword(): string {
  return randomBytes(24).toString('base64url');
}
