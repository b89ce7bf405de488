import { isId } from '../../domain/ids.js';
import { LapseError } from '../../domain/errors.js';

/**
 * Ephemeral accounts are named from the grant id, so provision, revoke and reconciliation find
 * them again without any state of their own: `grt_01jx…` becomes `lapse_01jx…` (32 characters,
 * which fits MySQL's 32-character user names and PostgreSQL's 63-byte role names, and needs no
 * quoting anywhere).
 */
const PREFIX = 'lapse_';
const ACCOUNT = /^lapse_([0-9a-z]{26})$/;

export function ephemeralAccountName(grantId: string): string {
  // NB. Grant ids come from Lapse itself; refusing anything else keeps a bad id from ever
  // becoming part of an account name.
  if (!isId('grant', grantId)) throw new LapseError('validation_failed', `"${grantId.slice(0, 40)}" is not a grant id`, { where: 'grantId' });
  return `${PREFIX}${grantId.slice(4)}`;
}

/** The grant id an ephemeral account was named from, or null for any other name. */
export function grantIdOfAccount(account: string): string | null {
  const match = ACCOUNT.exec(account);
  return match ? `grt_${match[1]}` : null;
}
