import type { Insertable } from 'kysely';
import type { Executor } from './executor.js';
import type { MfaChallengesTable, MfaTotpTable, WebauthnCredentialsTable } from './schema.js';

/** Second factors: TOTP secrets (sealed), passkeys, their one-use challenges and failed attempts. src/auth/mfa holds the rules. */

/** Which factors a user (by name) has: an active TOTP factor, any passkey. Undefined for an unknown name. */
export async function factorsOfUser(db: Executor, userName: string) {
  return db
    .selectFrom('users as u')
    .select((eb) => [
      eb.exists(eb.selectFrom('mfa_totp as t').select('t.id').whereRef('t.user_id', '=', 'u.id').where('t.status', '=', 'active')).as('totp'),
      eb.exists(eb.selectFrom('webauthn_credentials as w').select('w.id').whereRef('w.user_id', '=', 'u.id')).as('webauthn'),
    ])
    .where('u.name', '=', userName)
    .executeTakeFirst();
}

// --- failed attempts

/** Failed MFA attempts of a user since `since`. */
export async function countMfaFailures(tx: Executor, userId: string, since: Date): Promise<number> {
  const { n } = await tx
    .selectFrom('mfa_failures')
    .select((eb) => eb.fn.countAll<string>().as('n'))
    .where('user_id', '=', userId)
    .where('at', '>', since)
    .executeTakeFirstOrThrow();
  return Number(n);
}

/** Records a failure after dropping the user's failures at or before `dropUpTo` (outside the window they count for nothing). */
export async function recordMfaFailure(tx: Executor, failure: { userId: string; factor: 'totp' | 'webauthn'; at: Date }, dropUpTo: Date): Promise<void> {
  await tx.deleteFrom('mfa_failures').where('user_id', '=', failure.userId).where('at', '<=', dropUpTo).execute();
  await tx.insertInto('mfa_failures').values({ user_id: failure.userId, factor: failure.factor, at: failure.at }).execute();
}

export async function clearMfaFailures(tx: Executor, userId: string): Promise<void> {
  await tx.deleteFrom('mfa_failures').where('user_id', '=', userId).execute();
}

// --- TOTP

export async function getTotpFactor(db: Executor, userId: string) {
  return db.selectFrom('mfa_totp').selectAll().where('user_id', '=', userId).executeTakeFirst();
}

export async function getTotpFactorIn(db: Executor, userId: string, status: 'pending' | 'active') {
  return db.selectFrom('mfa_totp').selectAll().where('user_id', '=', userId).where('status', '=', status).executeTakeFirst();
}

/** Stores a new TOTP factor, replacing the factor `replacing` (a pending enrollment) if given. */
export async function insertTotpFactor(tx: Executor, row: Insertable<MfaTotpTable>, replacing?: string): Promise<void> {
  if (replacing) await tx.deleteFrom('mfa_totp').where('id', '=', replacing).execute();
  await tx.insertInto('mfa_totp').values(row).execute();
}

/**
 * Records the use of a code at `step`, only if no code at or after that step was accepted before
 * (activating a pending factor with its first code). True if this call recorded it.
 * NB. Conditional on the stored step: of two concurrent uses of one code, one updates a row and
 * the other sees a replay.
 */
export async function acceptTotpStep(tx: Executor, factorId: string, step: number, at: Date, activate: boolean): Promise<boolean> {
  const accepted = await tx
    .updateTable('mfa_totp')
    .set({ last_step: String(step), last_used_at: at, ...(activate ? { status: 'active', confirmed_at: at } : {}) })
    .where('id', '=', factorId)
    .where((eb) => eb.or([eb('last_step', 'is', null), eb('last_step', '<', String(step))]))
    .executeTakeFirst();
  return Number(accepted.numUpdatedRows) > 0;
}

/** Deletes the user's TOTP factor; what was deleted, or undefined. */
export async function deleteTotpFactor(tx: Executor, userId: string) {
  return tx.deleteFrom('mfa_totp').where('user_id', '=', userId).returning(['id', 'status']).executeTakeFirst();
}

// --- passkeys

export async function passkeysOfUser(db: Executor, userId: string) {
  return db.selectFrom('webauthn_credentials').selectAll().where('user_id', '=', userId).orderBy('created_at').execute();
}

export async function passkeyCredentialExists(tx: Executor, credentialId: string): Promise<boolean> {
  return (await tx.selectFrom('webauthn_credentials').select('id').where('credential_id', '=', credentialId).executeTakeFirst()) !== undefined;
}

export async function getUserPasskeyByCredential(tx: Executor, userId: string, credentialId: string) {
  return tx.selectFrom('webauthn_credentials').selectAll().where('credential_id', '=', credentialId).where('user_id', '=', userId).executeTakeFirst();
}

export async function insertPasskey(tx: Executor, row: Insertable<WebauthnCredentialsTable>): Promise<void> {
  await tx.insertInto('webauthn_credentials').values(row).execute();
}

export async function recordPasskeyUse(tx: Executor, passkeyId: string, use: { counter: number; backedUp: boolean; at: Date }): Promise<void> {
  await tx
    .updateTable('webauthn_credentials')
    .set({ counter: String(use.counter), backed_up: use.backedUp, last_used_at: use.at })
    .where('id', '=', passkeyId)
    .execute();
}

/** Deletes one of the user's passkeys; what was deleted, or undefined (unknown or someone else's). */
export async function deleteUserPasskey(tx: Executor, userId: string, passkeyId: string) {
  return tx.deleteFrom('webauthn_credentials').where('id', '=', passkeyId).where('user_id', '=', userId).returning(['id', 'name']).executeTakeFirst();
}

// --- challenges

/** Stores a one-use challenge after clearing the expired ones (garbage, cleared as new ones are issued). */
export async function insertMfaChallenge(tx: Executor, row: Insertable<MfaChallengesTable>, now: Date): Promise<void> {
  await tx.deleteFrom('mfa_challenges').where('expires_at', '<', now).execute();
  await tx.insertInto('mfa_challenges').values(row).execute();
}

/** Deletes and returns (its expiry) the challenge issued to this user for this purpose, or undefined. */
export async function takeMfaChallenge(tx: Executor, userId: string, purpose: 'registration' | 'authentication', challenge: string) {
  return tx
    .deleteFrom('mfa_challenges')
    .where('challenge', '=', challenge)
    .where('user_id', '=', userId)
    .where('purpose', '=', purpose)
    .returning('expires_at')
    .executeTakeFirst();
}
