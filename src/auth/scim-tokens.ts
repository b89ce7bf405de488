import { createHash, randomBytes } from 'node:crypto';
import { LapseError } from '../domain/errors.js';
import { newId } from '../domain/ids.js';
import { controlCharacterProblem } from '../domain/text.js';
import { findLiveScimToken, insertScimToken, markScimTokenRevoked, markScimTokenUsed, type Executor } from '../store/index.js';

/**
 * SCIM bearer tokens: what an IdP (Okta, Entra ID) presents to push people and groups. A token of
 * its own kind, in a table of its own, so it can do nothing but SCIM, and the SCIM routes accept
 * nothing else (an API token, even an admin's, is refused there).
 */
const SCIM_PREFIX = 'lapse_scim_';
/** `lapse_scim_` + 43 base64url characters (256 bits); never the shape of an API token. */
const SCIM_SHAPE = /^lapse_scim_[A-Za-z0-9_-]{43}$/;

const hash = (token: string) => createHash('sha256').update(`lapse-scim\0${token}`).digest('hex');

export interface IssuedScimToken {
  readonly id: string;
  /** Shown once, stored only as its hash. */
  readonly token: string;
  readonly expiresAt: Date | null;
}

/** A new SCIM token named for the IdP it is for (e.g. `okta`). */
export async function issueScimToken(
  tx: Executor,
  input: { name: string; createdBy: string; expiresInMs: number | null },
  now: Date,
): Promise<IssuedScimToken> {
  const name = input.name.trim();
  if (name.length === 0 || name.length > 100) throw new LapseError('validation_failed', 'a SCIM token name is 1 to 100 characters', { where: 'name' });
  const problem = controlCharacterProblem(name);
  if (problem) throw new LapseError('validation_failed', `the SCIM token name ${problem}`, { where: 'name' });
  const token = `${SCIM_PREFIX}${randomBytes(32).toString('base64url')}`;
  const id = newId('scimToken', now.getTime());
  const expiresAt = input.expiresInMs === null ? null : new Date(now.getTime() + input.expiresInMs);
  await insertScimToken(tx, {
    id,
    name,
    secret_hash: hash(token),
    created_at: now,
    created_by: input.createdBy,
    expires_at: expiresAt,
    last_used_at: null,
    revoked_at: null,
  });
  return { id, token, expiresAt };
}

/** The SCIM token presented, or null (unknown, malformed, revoked, expired, or any other kind of token). */
export async function authenticateScimToken(db: Executor, presented: string): Promise<{ id: string; name: string } | null> {
  if (!SCIM_SHAPE.test(presented)) return null;
  const row = await findLiveScimToken(db, hash(presented));
  if (!row) return null;
  const lastUsed = row.last_used_at ? new Date(row.last_used_at).getTime() : 0;
  if (Date.now() - lastUsed > 60_000) await markScimTokenUsed(db, row.id);
  return { id: row.id, name: row.name };
}

export async function revokeScimToken(tx: Executor, id: string): Promise<boolean> {
  return markScimTokenRevoked(tx, id);
}
