import { sql, type Insertable } from 'kysely';
import type { Executor } from './executor.js';
import type { ApiTokensTable } from './schema.js';

/** API tokens: stored by the hash of their secret (src/auth/tokens.ts decides the rules). */

/** Stores a token; without `issued_by` the issuer recorded is the owner's name. */
export async function insertApiToken(tx: Executor, row: Omit<Insertable<ApiTokensTable>, 'issued_by'> & { issued_by?: string | undefined }): Promise<void> {
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
