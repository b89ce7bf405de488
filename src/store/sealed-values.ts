import { sql } from 'kysely';
import type { Executor } from './executor.js';

/**
 * Every column that holds a value sealed with the key-encryption key (src/secrets), for
 * `lapse vault rekey`: each is read in id order and replaced one value at a time, only if it is
 * still what was read (a rotation or a fetch that changed or deleted it meanwhile wins).
 */
export const SEALED_COLUMNS = [
  { kind: 'vault_current', table: 'vault_accounts', id: 'id', column: 'current_sealed' },
  { kind: 'vault_pending', table: 'vault_accounts', id: 'id', column: 'pending_sealed' },
  { kind: 'grant_handout', table: 'grant_credentials', id: 'grant_id', column: 'sealed' },
  { kind: 'mfa_totp', table: 'mfa_totp', id: 'id', column: 'secret_sealed' },
] as const;

export type SealedColumn = (typeof SEALED_COLUMNS)[number];
export type SealedKind = SealedColumn['kind'];

/** One sealed value and what its context is made of (the row's id, owner and generation). */
export interface SealedValue {
  readonly id: string;
  readonly sealed: string;
  /** vault: the account's generation; others: 0. */
  readonly generation: number;
  /** mfa_totp: the user id (its seal context); others: the id. */
  readonly owner: string;
}

/**
 * Up to `limit` values in `column` not sealed under `keyId`, after `afterId` in id order.
 * NB. The key id is the second dot-separated part of every sealed value (v1 and v2 alike).
 */
export async function sealedValuesNotUnder(tx: Executor, column: SealedColumn, keyId: string, afterId: string, limit: number): Promise<SealedValue[]> {
  const generation = column.table === 'vault_accounts' ? sql.ref('generation') : sql.lit(0);
  const owner = column.table === 'mfa_totp' ? sql.ref('user_id') : sql.ref(column.id);
  const { rows } = await sql<{ id: string; sealed: string; generation: number; owner: string }>`
    SELECT ${sql.ref(column.id)} AS id, ${sql.ref(column.column)} AS sealed, ${generation} AS generation, ${owner} AS owner
    FROM ${sql.table(column.table)}
    WHERE ${sql.ref(column.column)} IS NOT NULL
      AND split_part(${sql.ref(column.column)}, '.', 2) <> ${keyId}
      AND ${sql.ref(column.id)} > ${afterId}
    ORDER BY ${sql.ref(column.id)}
    LIMIT ${limit}`.execute(tx);
  return rows.map((row) => ({ ...row, generation: Number(row.generation) }));
}

/** Replaces one sealed value if it is still `previous`; false when it changed or went meanwhile. */
export async function replaceSealedValue(tx: Executor, column: SealedColumn, id: string, previous: string, next: string, keyId: string): Promise<boolean> {
  const keyColumn = column.table === 'grant_credentials' ? sql`, key_id = ${keyId}` : sql``;
  const result = await sql`
    UPDATE ${sql.table(column.table)} SET ${sql.ref(column.column)} = ${next}${keyColumn}
    WHERE ${sql.ref(column.id)} = ${id} AND ${sql.ref(column.column)} = ${previous}`.execute(tx);
  return Number(result.numAffectedRows ?? 0) === 1;
}

/** How many values in each column are not sealed under `keyId` (what a rekey has left to do). */
export async function countSealedNotUnder(tx: Executor, keyId: string): Promise<Record<SealedKind, number>> {
  const counts = {} as Record<SealedKind, number>;
  for (const column of SEALED_COLUMNS) {
    const { rows } = await sql<{ n: string | number }>`
      SELECT count(*) AS n FROM ${sql.table(column.table)}
      WHERE ${sql.ref(column.column)} IS NOT NULL AND split_part(${sql.ref(column.column)}, '.', 2) <> ${keyId}`.execute(tx);
    counts[column.kind] = Number(rows[0]!.n);
  }
  return counts;
}
