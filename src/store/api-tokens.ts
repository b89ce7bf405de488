import { sql, type Insertable } from 'kysely';
import type { Executor } from './executor.js';
import type { ApiTokensTable } from './schema.js';

/** API tokens: stored by the hash of their secret (src/auth/tokens.ts decides the rules). */

/** Stores a token; without `issued_by` the issuer recorded is the owner's name. */
export async function insertApiToken(
  tx: Executor,
  row: Omit<Insertable<ApiTokensTable>, 'issued_by' | 'minted_by'> & { issued_by?: string | undefined; minted_by?: string | null },
): Promise<void> {
  const { issued_by: issuedBy, ...rest } = row;
  await tx
    .insertInto('api_tokens')
    .values((eb) => ({ ...rest, issued_by: issuedBy ?? eb.selectFrom('users').select('name').where('id', '=', row.user_id) }))
    .execute();
}

/** The unrevoked, unexpired (database clock) token with this secret hash and its enabled owner, or undefined. */
export async function findLiveApiToken(db: Executor, secretHash: string) {
  return db
    .selectFrom('api_tokens as t')
    .innerJoin('users as u', 'u.id', 't.user_id')
    .select(['t.id as tokenId', 't.scopes', 't.last_used_at', 't.expires_at', 't.issued_by', 'u.name', 'u.kind', 'u.groups'])
    .where('t.secret_hash', '=', secretHash)
    .where('t.revoked_at', 'is', null)
    .where('u.disabled_at', 'is', null)
    .where((eb) => eb.or([eb('t.expires_at', 'is', null), eb('t.expires_at', '>', sql<Date>`clock_timestamp()`)]))
    .executeTakeFirst();
}

export async function markApiTokenUsed(db: Executor, tokenId: string): Promise<void> {
  await db
    .updateTable('api_tokens')
    .set({ last_used_at: sql<Date>`now()` })
    .where('id', '=', tokenId)
    .execute();
}

/** Revokes a token; true if it was not revoked already. */
export async function markApiTokenRevoked(db: Executor, tokenId: string): Promise<boolean> {
  const result = await db
    .updateTable('api_tokens')
    .set({ revoked_at: sql<Date>`now()` })
    .where('id', '=', tokenId)
    .where('revoked_at', 'is', null)
    .executeTakeFirst();
  return Number(result.numUpdatedRows) > 0;
}

/** An API token as its owner (or an admin) lists it: never the secret. */
export interface TokenListing {
  readonly id: string;
  readonly user: string;
  readonly name: string;
  readonly scopes: readonly string[];
  readonly issuedBy: string;
  readonly createdAt: Date;
  readonly expiresAt: Date | null;
  readonly lastUsedAt: Date | null;
  readonly revokedAt: Date | null;
  /** Expired by the database's clock. */
  readonly expired: boolean;
}

/** A user's tokens, newest first (at most 500). */
export async function listTokensOf(db: Executor, userName: string): Promise<TokenListing[]> {
  const rows = await db
    .selectFrom('api_tokens as t')
    .innerJoin('users as u', 'u.id', 't.user_id')
    .select([
      't.id',
      't.name',
      't.scopes',
      't.issued_by',
      't.created_at',
      't.expires_at',
      't.last_used_at',
      't.revoked_at',
      'u.name as user',
      sql<boolean>`t.expires_at IS NOT NULL AND t.expires_at <= clock_timestamp()`.as('expired'),
    ])
    .where('u.name', '=', userName)
    .orderBy('t.created_at', 'desc')
    .limit(500)
    .execute();
  return rows.map((t) => ({
    id: t.id,
    user: t.user,
    name: t.name,
    scopes: t.scopes,
    issuedBy: t.issued_by,
    createdAt: new Date(t.created_at),
    expiresAt: t.expires_at === null ? null : new Date(t.expires_at),
    lastUsedAt: t.last_used_at === null ? null : new Date(t.last_used_at),
    revokedAt: t.revoked_at === null ? null : new Date(t.revoked_at),
    expired: t.expired,
  }));
}

/** A token's id and its owner's name, or undefined. */
export async function findTokenOwner(db: Executor, tokenId: string): Promise<{ id: string; name: string } | undefined> {
  return db
    .selectFrom('api_tokens as t')
    .innerJoin('users as u', 'u.id', 't.user_id')
    .select(['t.id', 'u.name'])
    .where('t.id', '=', tokenId)
    .executeTakeFirst();
}

/** Revokes every live token of a user (sign out everywhere), and every token those minted; how many of the user's. */
export async function revokeTokensOfUser(tx: Executor, userId: string): Promise<number> {
  const revoked = await tx
    .updateTable('api_tokens')
    .set({ revoked_at: sql<Date>`now()` })
    .where('user_id', '=', userId)
    .where('revoked_at', 'is', null)
    .executeTakeFirst();
  const mine = await tx.selectFrom('api_tokens').select('id').where('user_id', '=', userId).execute();
  await revokeMintedBy(
    tx,
    mine.map((t) => t.id),
  );
  return Number(revoked.numUpdatedRows);
}

/**
 * Revokes every live token minted, directly or in turn, with one of these tokens (whether those
 * are revoked already or not); returns the ids it revoked.
 */
export async function revokeMintedBy(tx: Executor, tokenIds: readonly string[]): Promise<string[]> {
  if (tokenIds.length === 0) return [];
  const { rows } = await sql<{ id: string }>`
    WITH RECURSIVE line(id) AS (
      SELECT id FROM api_tokens WHERE minted_by = ANY(${[...tokenIds]}::text[])
      UNION
      SELECT t.id FROM api_tokens t JOIN line ON t.minted_by = line.id
    )
    UPDATE api_tokens SET revoked_at = now()
    WHERE id IN (SELECT id FROM line) AND revoked_at IS NULL
    RETURNING id`.execute(tx);
  return rows.map((r) => r.id);
}
