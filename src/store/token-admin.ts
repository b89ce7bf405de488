import { sql } from 'kysely';
import type { Executor } from './executor.js';

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

/** Revokes every live token of a user (sign out everywhere); how many. */
export async function revokeTokensOfUser(tx: Executor, userId: string): Promise<number> {
  const revoked = await tx
    .updateTable('api_tokens')
    .set({ revoked_at: sql<Date>`now()` })
    .where('user_id', '=', userId)
    .where('revoked_at', 'is', null)
    .executeTakeFirst();
  return Number(revoked.numUpdatedRows);
}

/** A user by name, with what token issuing needs (disabled ones too: the caller decides). */
export async function findUserByNameForTokens(db: Executor, name: string) {
  return db.selectFrom('users').select(['id', 'name', 'kind', 'groups', 'disabled_at']).where('name', '=', name).executeTakeFirst();
}

/** An enabled user by id, or undefined. */
export async function findEnabledUserById(db: Executor, id: string) {
  return db.selectFrom('users').select(['id', 'name', 'kind', 'groups']).where('id', '=', id).where('disabled_at', 'is', null).executeTakeFirst();
}

/** A user's id by name, or undefined. */
export async function findUserIdByName(db: Executor, name: string): Promise<string | undefined> {
  return (await db.selectFrom('users').select('id').where('name', '=', name).executeTakeFirst())?.id;
}
