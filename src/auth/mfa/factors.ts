import { factorsOfUser, type Executor } from '../../store/index.js';
import type { MfaFactor } from './context.js';

/** The factors a user can step up with now: a confirmed authenticator app, registered passkeys. */
export async function enrolledFactors(db: Executor, principalId: string): Promise<MfaFactor[]> {
  const row = await factorsOfUser(db, principalId);
  if (!row) return [];
  return [...(row.totp ? (['totp'] as const) : []), ...(row.webauthn ? (['webauthn'] as const) : [])];
}

/** The one-request step-up for API-token callers: `X-Lapse-MFA: totp 123456`. */
export const MFA_HEADER = 'x-lapse-mfa';

/** The code in an `X-Lapse-MFA` header, or null when the header is not of the form `totp <6 digits>`. */
export function parseMfaHeader(value: string): { factor: 'totp'; code: string } | null {
  const match = /^totp ([0-9]{6})$/.exec(value.trim());
  return match ? { factor: 'totp', code: match[1]! } : null;
}
