import { createHash, randomBytes } from 'node:crypto';
import { z } from 'zod';
import { LapseError } from '../domain/errors.js';
import { newId } from '../domain/ids.js';
import type { Principal } from '../domain/principal.js';
import { findLiveApiToken, insertApiToken, markApiTokenRevoked, markApiTokenUsed, revokeMintedBy, type Executor } from '../store/index.js';
import { controlCharacterProblem } from '../domain/text.js';

/** What a token may do; each route names the scope it needs. */
export const TOKEN_SCOPES = ['read', 'request', 'approve', 'admin'] as const;
export type TokenScope = (typeof TOKEN_SCOPES)[number];

const TOKEN_PREFIX = 'lapse_';
/** `lapse_` + 43 base64url characters (256 bits). Anything else is refused before any lookup. */
const TOKEN_SHAPE = /^lapse_[A-Za-z0-9_-]{43}$/;

function hashSecret(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

export interface IssuedToken {
  readonly id: string;
  /** The secret: shown once, stored only as its hash. */
  readonly token: string;
  readonly expiresAt: Date | null;
}

/** Issuers that are not principals: the offline `lapse admin token create` records `cli:<os user>`. */
export const OFFLINE_ISSUER_PREFIX = 'cli:';

/**
 * Stores a new token for `userId`. `issuedBy` is who issued it: the owner (the default), an admin
 * issuing for a service identity, or `cli:<os user>`. Callers decide whether the issuer may;
 * `notAfter` caps the expiry (a token creating a token).
 */
export async function issueApiToken(
  tx: Executor,
  input: { userId: string; name: string; scopes: readonly string[]; expiresInMs: number | null; issuedBy?: string; notAfter?: Date; mintedBy?: string },
  now: Date,
): Promise<IssuedToken> {
  const scopes = z
    .array(z.enum(TOKEN_SCOPES))
    .min(1)
    .max(4)
    .safeParse([...new Set(input.scopes)]);
  if (!scopes.success) {
    throw new LapseError('validation_failed', `invalid scopes: ${input.scopes.join(', ') || '(none)'}`, {
      where: 'scope',
      hint: `Use one or more of ${TOKEN_SCOPES.join(', ')}.`,
    });
  }
  const name = input.name.trim();
  if (name.length === 0 || name.length > 100) throw new LapseError('validation_failed', 'a token name is 1 to 100 characters', { where: 'name' });
  const problem = controlCharacterProblem(name);
  if (problem) throw new LapseError('validation_failed', `the token name ${problem}`, { where: 'name' });
  const token = `${TOKEN_PREFIX}${randomBytes(32).toString('base64url')}`;
  const id = newId('token');
  let expiresAt = input.expiresInMs === null ? null : new Date(now.getTime() + input.expiresInMs);
  // NB. A bound the caller checked a moment ago by the same clock: clamped, so it holds to the millisecond.
  if (input.notAfter && (expiresAt === null || expiresAt > input.notAfter)) expiresAt = input.notAfter;
  await insertApiToken(tx, {
    id,
    user_id: input.userId,
    name,
    secret_hash: hashSecret(token),
    scopes: JSON.stringify(scopes.data),
    created_at: now,
    expires_at: expiresAt,
    last_used_at: null,
    revoked_at: null,
    issued_by: input.issuedBy,
    minted_by: input.mintedBy ?? null,
  });
  return { id, token, expiresAt };
}

export interface TokenIdentity {
  readonly tokenId: string;
  /** The owner, acting through this token (`principal.via` names the token and its issuer). */
  readonly principal: Principal;
  /** The scopes the token was made with; what it may do now also depends on the owner's roles. */
  readonly scopes: readonly TokenScope[];
  readonly expiresAt: Date | null;
}

/**
 * The identity behind a presented token, or null: unknown, malformed, expired, revoked, its user
 * disabled, or a person's token someone else issued (tokens made before issuers were checked: a
 * token acts as a person only if that person, or the offline CLI, issued it) all look the same to
 * the caller. Validity is judged by the database clock.
 */
export async function authenticateToken(db: Executor, presented: string): Promise<TokenIdentity | null> {
  if (!TOKEN_SHAPE.test(presented)) return null;
  const row = await findLiveApiToken(db, hashSecret(presented));
  if (!row) return null;
  if (row.kind === 'user' && row.issued_by !== row.name && !row.issued_by.startsWith(OFFLINE_ISSUER_PREFIX)) return null;
  // NB. last-used is advisory: written at most once a minute per token, so reads stay reads.
  const lastUsed = row.last_used_at ? new Date(row.last_used_at).getTime() : 0;
  if (Date.now() - lastUsed > 60_000) {
    await markApiTokenUsed(db, row.tokenId);
  }
  return {
    tokenId: row.tokenId,
    principal: { id: row.name, kind: row.kind, groups: row.groups, via: { tokenId: row.tokenId, issuedBy: row.issued_by } },
    scopes: row.scopes as TokenScope[],
    expiresAt: row.expires_at === null ? null : new Date(row.expires_at),
  };
}

/** Revokes a token and every token minted with it (in turn too): whether it was live, and the others revoked. */
export async function revokeApiToken(tx: Executor, tokenId: string): Promise<{ revoked: boolean; alsoRevoked: string[] }> {
  const revoked = await markApiTokenRevoked(tx, tokenId);
  return { revoked, alsoRevoked: await revokeMintedBy(tx, [tokenId]) };
}
