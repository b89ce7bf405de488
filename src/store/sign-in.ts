import { sql, type Insertable } from 'kysely';
import type { Executor } from './executor.js';
import type { CliLoginCodesTable, OidcFlowsTable } from './schema.js';

/**
 * Short-lived sign-in state: setup tokens, CLI login codes, OIDC flows and failed password
 * attempts. Secrets are stored only as hashes; src/auth holds the rules.
 */

export async function insertSetupToken(tx: Executor, row: { secretHash: string; createdAt: Date; expiresAt: Date }): Promise<void> {
  await tx
    .insertInto('setup_tokens')
    .values({ secret_hash: row.secretHash, created_at: row.createdAt, expires_at: row.expiresAt, used_at: null, used_by: null })
    .execute();
}

/** Spends an unused, unexpired setup token; true if this call spent it. */
export async function spendSetupToken(tx: Executor, secretHash: string, usedBy: string, now: Date): Promise<boolean> {
  const spent = await tx
    .updateTable('setup_tokens')
    .set({ used_at: now, used_by: usedBy })
    .where('secret_hash', '=', secretHash)
    .where('used_at', 'is', null)
    .where('expires_at', '>', now)
    .returning('secret_hash')
    .executeTakeFirst();
  return spent !== undefined;
}

/** Stores a CLI login code after deleting codes that expired before `expiredBefore`. */
export async function insertCliLoginCode(tx: Executor, row: Insertable<CliLoginCodesTable>, expiredBefore: Date): Promise<void> {
  await tx.deleteFrom('cli_login_codes').where('expires_at', '<', expiredBefore).execute();
  await tx.insertInto('cli_login_codes').values(row).execute();
}

/** Spends an unused code that has not expired (database clock); its user and PKCE challenge, or undefined. */
export async function spendCliLoginCode(db: Executor, codeHash: string) {
  return db
    .updateTable('cli_login_codes')
    .set({ used_at: sql<Date>`clock_timestamp()` })
    .where('code_hash', '=', codeHash)
    .where('used_at', 'is', null)
    .where('expires_at', '>', sql<Date>`clock_timestamp()`)
    .returning(['user_id', 'code_challenge'])
    .executeTakeFirst();
}

/** Stores an OIDC flow after deleting the flows expired at `now`. */
export async function insertOidcFlow(tx: Executor, row: Insertable<OidcFlowsTable>, now: Date): Promise<void> {
  await tx.deleteFrom('oidc_flows').where('expires_at', '<', now).execute();
  await tx.insertInto('oidc_flows').values(row).execute();
}

/** Removes and returns the flow with this id hash (single use), or undefined. */
export async function takeOidcFlow(db: Executor, idHash: string) {
  return db.deleteFrom('oidc_flows').where('id_hash', '=', idHash).returningAll().executeTakeFirst();
}

/** Failed sign-ins by account or address within the last `windowMs` (database clock), and the oldest. */
export async function countLoginFailures(
  db: Executor,
  column: 'account' | 'ip',
  value: string,
  windowMs: number,
): Promise<{ count: number; oldest: Date | null }> {
  const row = await db
    .selectFrom('login_failures')
    .select((eb) => [eb.fn.countAll<string>().as('n'), eb.fn.min('at').as('oldest')])
    .where(column, '=', value)
    .where('at', '>', sql<Date>`clock_timestamp() - ${windowMs} * interval '1 millisecond'`)
    .executeTakeFirstOrThrow();
  return { count: Number(row.n), oldest: row.oldest ? new Date(row.oldest as Date) : null };
}

/**
 * Records a failed sign-in and prunes the account's failures older than `keepAfter`; `pruneAll`
 * also prunes every account's.
 */
export async function recordLoginFailure(tx: Executor, failure: { account: string; ip: string; at: Date }, keepAfter: Date, pruneAll: boolean): Promise<void> {
  await tx.insertInto('login_failures').values(failure).execute();
  await tx.deleteFrom('login_failures').where('account', '=', failure.account).where('at', '<', keepAfter).execute();
  if (pruneAll) await tx.deleteFrom('login_failures').where('at', '<', keepAfter).execute();
}
