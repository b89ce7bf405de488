import { randomBytes } from 'node:crypto';

/**
 * Prefixed, time-ordered ids (`req_01J…`). The prefix says what a thing is in logs and URLs; the
 * leading 48-bit millisecond timestamp makes ids sort by creation, which keeps index inserts local.
 * NB. The timestamp is for ordering only; no decision is ever taken from an id's time.
 */
export const ID_PREFIXES = {
  request: 'req',
  review: 'rev',
  grant: 'grt',
  job: 'job',
  attempt: 'att',
  event: 'evt',
  finding: 'fnd',
  user: 'usr',
  token: 'tok',
  totp: 'otp',
  passkey: 'pky',
  session: 'ses',
  delivery: 'ntf',
  vaultAccount: 'vac',
  group: 'grp',
  scimToken: 'sct',
  reviewCampaign: 'rvc',
  reviewItem: 'rvi',
  webhook: 'whk',
  webhookDelivery: 'whd',
  alert: 'alr',
} as const;

export type IdKind = keyof typeof ID_PREFIXES;

const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz'; // Crockford base32, lower case

function base32(bytes: Uint8Array): string {
  let out = '';
  let buffer = 0;
  let bits = 0;
  for (const byte of bytes) {
    buffer = (buffer << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += ALPHABET[(buffer >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += ALPHABET[(buffer << (5 - bits)) & 31];
  return out;
}

export function newId(kind: IdKind, nowMs: number = Date.now()): string {
  const bytes = new Uint8Array(16);
  let t = nowMs;
  for (let i = 5; i >= 0; i--) {
    bytes[i] = t % 256;
    t = Math.floor(t / 256);
  }
  bytes.set(randomBytes(10), 6);
  return `${ID_PREFIXES[kind]}_${base32(bytes)}`;
}

const ID_PATTERN = /^[a-z]{3}_[0-9a-z]{26}$/;

export function isId(kind: IdKind, value: string): boolean {
  return ID_PATTERN.test(value) && value.startsWith(`${ID_PREFIXES[kind]}_`);
}
