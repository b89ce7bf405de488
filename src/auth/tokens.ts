import { createHash, randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import { z } from 'zod';
import { LapseError } from '../domain/errors.js';
import { newId } from '../domain/ids.js';
import type { Principal } from '../domain/principal.js';
import type { Executor } from '../store/index.js';
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

export async function issueApiToken(tx: Executor, input: { userId: string; name: string; scopes: readonly string[]; expiresInMs: number | null }, now: Date): Promise<IssuedToken> {
  const scopes = z.array(z.enum(TOKEN_SCOPES)).min(1).max(4).safeParse([...new Set(input.scopes)]);
  if (!scopes.success) {
    throw new LapseError('validation_failed', `invalid scopes: ${input.scopes.join(', ') || '(none)'}`, { where: 'scope', hint: `Use one or more of ${TOKEN_SCOPES.join(', ')}.` });
  }
  const name = input.name.trim();
  if (name.length === 0 || name.length > 100) throw new LapseError('validation_failed', 'a token name is 1 to 100 characters', { where: 'name' });
  const problem = controlCharacterProblem(name);
  if (problem) throw new LapseError('validation_failed', `the token name ${problem}`, { where: 'name' });
  const token = `${TOKEN_PREFIX}${randomBytes(32).toString('base64url')}`;
  const id = newId('token');
  const expiresAt = input.expiresInMs === null ? null : new Date(now.getTime() + input.expiresInMs);
  await tx
    .insertInto('api_tokens')
    .values({ id, user_id: input.userId, name, secret_hash: hashSecret(token), scopes: JSON.stringify(scopes.data), created_at: now, expires_at: expiresAt, last_used_at: null, revoked_at: null })
    .execute();
  return { id, token, expiresAt };
}

export interface TokenIdentity {
  readonly tokenId: string;
  readonly principal: Principal;
  readonly scopes: readonly TokenScope[];
}

/**
 * The identity behind a presented token, or null: unknown, malformed, expired, revoked, or its
 * user disabled all look the same to the caller. Validity is judged by the database clock.
 */
export async function authenticateToken(db: Executor, presented: string): Promise<TokenIdentity | null> {
  if (!TOKEN_SHAPE.test(presented)) return null;
  const row = await db
    .selectFrom('api_tokens as t')
    .innerJoin('users as u', 'u.id', 't.user_id')
    .select(['t.id as tokenId', 't.scopes', 't.last_used_at', 'u.name', 'u.kind', 'u.groups'])
    .where('t.secret_hash', '=', hashSecret(presented))
    .where('t.revoked_at', 'is', null)
    .where('u.disabled_at', 'is', null)
    .where((eb) => eb.or([eb('t.expires_at', 'is', null), eb('t.expires_at', '>', sql<Date>`clock_timestamp()`)]))
    .executeTakeFirst();
  if (!row) return null;
  // NB. last-used is advisory: written at most once a minute per token, so reads stay reads.
  const lastUsed = row.last_used_at ? new Date(row.last_used_at).getTime() : 0;
  if (Date.now() - lastUsed > 60_000) {
    await db.updateTable('api_tokens').set({ last_used_at: sql<Date>`now()` }).where('id', '=', row.tokenId).execute();
  }
  return { tokenId: row.tokenId, principal: { id: row.name, kind: row.kind, groups: row.groups }, scopes: row.scopes as TokenScope[] };
}

export async function revokeApiToken(db: Executor, tokenId: string): Promise<boolean> {
  const result = await db.updateTable('api_tokens').set({ revoked_at: sql<Date>`now()` }).where('id', '=', tokenId).where('revoked_at', 'is', null).executeTakeFirst();
  return Number(result.numUpdatedRows) > 0;
}
