import { sql, type Selectable } from 'kysely';
import type { VaultAccount } from '../domain/vault.js';
import type { Executor } from './executor.js';
import type { VaultAccountsTable } from './schema.js';

/** An account as stored: its state, and its passwords still sealed. */
export interface StoredVaultAccount extends VaultAccount {
  readonly currentSealed: string;
  readonly pendingSealed: string | null;
  readonly pendingSince: Date | null;
}

const date = (value: Date | string | null) => (value === null ? null : new Date(value));

function toAccount(row: Selectable<VaultAccountsTable>): StoredVaultAccount {
  return {
    id: row.id,
    target: row.target,
    account: row.account,
    status: row.status,
    generation: row.generation,
    holderGrantId: row.holder_grant_id,
    rotationReason: row.rotation_reason,
    rotatedAt: date(row.rotated_at),
    rotationFailures: row.rotation_failures,
    failingSince: date(row.failing_since),
    lastError: row.last_error,
    onboardedAt: new Date(row.onboarded_at),
    onboardedBy: row.onboarded_by,
    currentSealed: row.current_sealed,
    pendingSealed: row.pending_sealed,
    pendingSince: date(row.pending_since),
  };
}

function stateColumns(account: VaultAccount) {
  return {
    status: account.status,
    generation: account.generation,
    holder_grant_id: account.holderGrantId,
    rotation_reason: account.rotationReason,
    rotated_at: account.rotatedAt,
    rotation_failures: account.rotationFailures,
    failing_since: account.failingSince,
    last_error: account.lastError === null ? null : account.lastError.slice(0, 2000),
  };
}

/** The account, optionally locked for change (taken after its access key's lock, like grants). */
export async function getVaultAccount(
  tx: Executor,
  key: { id: string } | { target: string; account: string },
  options: { forUpdate?: boolean } = {},
): Promise<StoredVaultAccount | undefined> {
  let query = tx.selectFrom('vault_accounts').selectAll();
  query = 'id' in key ? query.where('id', '=', key.id) : query.where('target', '=', key.target).where('account', '=', key.account);
  if (options.forUpdate) query = query.forUpdate();
  const row = await query.executeTakeFirst();
  return row ? toAccount(row) : undefined;
}

/** Creates the account at onboarding, or replaces what an earlier onboarding stored (a new current password). */
export async function putOnboardedAccount(tx: Executor, account: VaultAccount, currentSealed: string): Promise<void> {
  const row = {
    id: account.id,
    target: account.target,
    account: account.account,
    ...stateColumns(account),
    current_sealed: currentSealed,
    pending_sealed: null,
    pending_since: null,
    onboarded_at: account.onboardedAt,
    onboarded_by: account.onboardedBy,
  };
  await tx
    .insertInto('vault_accounts')
    .values(row)
    .onConflict((oc) => oc.column('id').doUpdateSet({ ...row, id: undefined }))
    .execute();
}

export interface VaultAccountChanges {
  /** A new pending password (sealed), or null to drop it. */
  readonly pendingSealed?: string | null;
  /** Promotes the pending password to current (the rotation's last step). */
  readonly promotePending?: boolean;
}

/** Writes a checked transition (src/domain/vault.ts) and, with it, the passwords it moves. */
export async function updateVaultAccount(tx: Executor, account: VaultAccount, changes: VaultAccountChanges = {}): Promise<void> {
  await tx
    .updateTable('vault_accounts')
    .set({
      ...stateColumns(account),
      ...(changes.pendingSealed !== undefined
        ? { pending_sealed: changes.pendingSealed, pending_since: changes.pendingSealed === null ? null : sql<Date>`now()` }
        : {}),
      ...(changes.promotePending ? { current_sealed: sql<string>`pending_sealed`, pending_sealed: null, pending_since: null } : {}),
    })
    .where('id', '=', account.id)
    .execute();
}

/** Every account in the vault, by target and account (the admin view; passwords stay sealed). */
export async function listVaultAccounts(tx: Executor): Promise<StoredVaultAccount[]> {
  const rows = await tx.selectFrom('vault_accounts').selectAll().orderBy('target').orderBy('account').execute();
  return rows.map(toAccount);
}

/** Accounts whose rotation keeps failing: their password may still be known to a past holder. The metric to alert on. */
export async function countOverdueRotations(tx: Executor): Promise<number> {
  const row = await tx
    .selectFrom('vault_accounts')
    .select((eb) => eb.fn.countAll<string>().as('n'))
    .where('status', '=', 'rotating')
    .where('failing_since', 'is not', null)
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

/** What the admin view shows beside each account: who holds it (the holder grant's principal) and when its rotation job is due. */
export async function vaultAccountSchedules(tx: Executor): Promise<Map<string, { holderPrincipalId: string | null; rotationDueAt: Date | null }>> {
  const rows = await tx
    .selectFrom('vault_accounts as v')
    .leftJoin('grants as g', 'g.id', 'v.holder_grant_id')
    .leftJoin('jobs as j', (join) => join.onRef('j.subject_id', '=', 'v.id').on('j.kind', '=', 'rotate'))
    .select(['v.id as id', 'g.principal_id as holder', 'j.due_at as due'])
    .execute();
  return new Map(
    rows.map((r) => [r.id, { holderPrincipalId: r.holder ?? null, rotationDueAt: r.due === null || r.due === undefined ? null : new Date(r.due) }]),
  );
}
