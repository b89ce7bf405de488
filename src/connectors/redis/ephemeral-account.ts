import { LapseError } from '../../domain/errors.js';
import type { GrantSpec } from '../types.js';

/**
 * Names of ephemeral accounts: `lapse_<grant id>:<target>:<entitlement>:<principal>`. Redis and
 * RabbitMQ users carry no comment or label, so the name itself records which grant, target,
 * entitlement and principal an account belongs to: `listAccess` reads them back (and reports only
 * its own target's, since several targets may share one server), and operators see who is
 * connected in `CLIENT LIST` or the management UI. Characters outside `A-Z a-z 0-9 . _ @ -` in the
 * parts after the grant id are percent-encoded, so ":" stays a separator and no space or control
 * character reaches the server.
 */
const PREFIX = 'lapse_';
const GRANT_ID = /^[A-Za-z0-9_-]{1,64}$/;
const MAX_NAME = 1024;

export interface EphemeralAccount {
  readonly grantId: string;
  readonly target: string;
  readonly entitlement: string;
  readonly principalId: string;
}

export function ephemeralAccountName(grant: Pick<GrantSpec, 'grantId' | 'principalId'> & { target: { name: string }; entitlement: { name: string } }): string {
  if (!GRANT_ID.test(grant.grantId)) {
    throw new LapseError('validation_failed', `grant id "${grant.grantId.slice(0, 80)}" cannot name an account`, {
      where: 'grantId',
      hint: 'grant ids use letters, digits, "_" and "-"',
    });
  }
  const name = `${PREFIX}${grant.grantId}:${encode(grant.target.name)}:${encode(grant.entitlement.name)}:${encode(grant.principalId)}`;
  if (name.length > MAX_NAME) {
    throw new LapseError('validation_failed', `the account name for grant ${grant.grantId} would be longer than ${MAX_NAME} characters`, {
      where: 'principalId',
      hint: 'use a shorter principal id',
    });
  }
  return name;
}

/** The grant an account name belongs to, or null for an account Lapse did not create. */
export function parseEphemeralAccountName(name: string): EphemeralAccount | null {
  if (!name.startsWith(PREFIX)) return null;
  const parts = name.slice(PREFIX.length).split(':');
  if (parts.length !== 4) return null;
  const [grantId, target, entitlement, principalId] = parts as [string, string, string, string];
  if (!GRANT_ID.test(grantId) || target === '' || entitlement === '' || principalId === '') return null;
  try {
    return { grantId, target: decodeURIComponent(target), entitlement: decodeURIComponent(entitlement), principalId: decodeURIComponent(principalId) };
  } catch {
    return null;
  }
}

function encode(value: string): string {
  return Array.from(new TextEncoder().encode(value), (byte) => {
    const c = String.fromCharCode(byte);
    return /[A-Za-z0-9._@-]/.test(c) ? c : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }).join('');
}
