import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/** A 256-bit random secret in base64url (43 characters): session cookies, one-time codes, setup tokens. */
export function newSecret(): string {
  return randomBytes(32).toString('base64url');
}

/** High-entropy secrets are stored as their SHA-256: enough to find them, useless to a thief. */
export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

export const SECRET_SHAPE = /^[A-Za-z0-9_-]{43}$/;

export function sameSecret(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}
