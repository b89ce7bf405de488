import type { Executor } from './executor.js';

/** A grant's sealed credentials, waiting for its principal to fetch them once. */
export interface SealedCredentials {
  readonly grantId: string;
  readonly principalId: string;
  readonly keyId: string;
  readonly sealed: string;
  readonly createdAt: Date;
}

/** Stores (or, after a repeated provision, replaces) a grant's sealed credentials. */
export async function putCredentials(tx: Executor, credentials: SealedCredentials): Promise<void> {
  const row = {
    grant_id: credentials.grantId,
    principal_id: credentials.principalId,
    key_id: credentials.keyId,
    sealed: credentials.sealed,
    created_at: credentials.createdAt,
  };
  await tx
    .insertInto('grant_credentials')
    .values(row)
    .onConflict((oc) => oc.column('grant_id').doUpdateSet({ key_id: row.key_id, sealed: row.sealed, created_at: row.created_at }))
    .execute();
}

/** Removes and returns a grant's credentials: whoever gets them is the only one who ever will. */
export async function takeCredentials(tx: Executor, grantId: string): Promise<SealedCredentials | undefined> {
  const row = await tx.deleteFrom('grant_credentials').where('grant_id', '=', grantId).returningAll().executeTakeFirst();
  if (!row) return undefined;
  return { grantId: row.grant_id, principalId: row.principal_id, keyId: row.key_id, sealed: row.sealed, createdAt: new Date(row.created_at) };
}

/** Which of these grants have credentials waiting to be fetched (one query for a page of grants). */
export async function grantsWithCredentials(tx: Executor, grantIds: readonly string[]): Promise<Set<string>> {
  if (grantIds.length === 0) return new Set();
  const rows = await tx
    .selectFrom('grant_credentials')
    .select('grant_id')
    .where('grant_id', 'in', [...grantIds])
    .execute();
  return new Set(rows.map((row) => row.grant_id));
}

export async function hasCredentials(tx: Executor, grantId: string): Promise<boolean> {
  return (await tx.selectFrom('grant_credentials').select('grant_id').where('grant_id', '=', grantId).executeTakeFirst()) !== undefined;
}

/** Erases what ended grants were still holding: nothing secret outlives the access it opened. */
export async function eraseCredentials(tx: Executor, grantIds: readonly string[]): Promise<void> {
  if (grantIds.length === 0) return;
  await tx
    .deleteFrom('grant_credentials')
    .where('grant_id', 'in', [...grantIds])
    .execute();
}
