import { createHash } from 'node:crypto';
import { sql, type Selectable } from 'kysely';
import type { EndReason, Grant } from '../domain/grant.js';
import type { Executor } from './executor.js';
import { eraseCredentials } from './credentials.js';
import type { GrantsTable } from './schema.js';

export interface StoredGrant extends Grant {
  readonly accessKey: string;
  readonly handle: Record<string, unknown> | null;
  readonly provisionAttempts: number;
  readonly revokeAttempts: number;
  readonly lastError: string | null;
  readonly coveredBy: string | null;
  /** Revoked at the target but not yet confirmed by reading back (why, from the connector); null otherwise. */
  readonly propagationPending: string | null;
}

function toGrant(row: Selectable<GrantsTable>): StoredGrant {
  const date = (value: Date | string | null) => (value === null ? null : new Date(value));
  return {
    id: row.id,
    requestId: row.request_id,
    principalId: row.principal_id,
    target: row.target,
    entitlement: row.entitlement,
    status: row.status,
    durationMs: Number(row.duration_ms),
    breakGlass: row.break_glass,
    parameters: row.parameters,
    activatedAt: date(row.activated_at),
    expiresAt: date(row.expires_at),
    endReason: row.end_reason as EndReason | null,
    endedBy: row.ended_by,
    endedAt: date(row.ended_at),
    extensions: row.extensions,
    accessKey: row.access_key,
    handle: row.handle,
    provisionAttempts: row.provision_attempts,
    revokeAttempts: row.revoke_attempts,
    lastError: row.last_error,
    coveredBy: row.covered_by,
    propagationPending: row.propagation_pending,
  };
}

/** The lifecycle columns of a grant, written the same way on insert and on every transition. */
function stateColumns(grant: Grant) {
  return {
    status: grant.status,
    duration_ms: grant.durationMs,
    activated_at: grant.activatedAt,
    expires_at: grant.expiresAt,
    end_reason: grant.endReason,
    ended_by: grant.endedBy,
    ended_at: grant.endedAt,
    extensions: grant.extensions,
  };
}

export async function insertGrant(tx: Executor, grant: Grant, accessKey: string, createdAt: Date): Promise<void> {
  await tx
    .insertInto('grants')
    .values({
      id: grant.id,
      request_id: grant.requestId,
      principal_id: grant.principalId,
      target: grant.target,
      entitlement: grant.entitlement,
      access_key: accessKey,
      break_glass: grant.breakGlass,
      parameters: JSON.stringify(grant.parameters),
      ...stateColumns(grant),
      handle: null,
      provision_attempts: 0,
      revoke_attempts: 0,
      last_error: null,
      covered_by: null,
      propagation_pending: null,
      created_at: createdAt,
    })
    .execute();
}

export async function getGrant(tx: Executor, id: string, options: { forUpdate?: boolean } = {}): Promise<StoredGrant | undefined> {
  let query = tx.selectFrom('grants').selectAll().where('id', '=', id);
  if (options.forUpdate) query = query.forUpdate();
  const row = await query.executeTakeFirst();
  return row ? toGrant(row) : undefined;
}

export interface GrantChanges {
  readonly handle?: Record<string, unknown> | null;
  readonly lastError?: string | null;
  readonly provisionAttempt?: true;
}

/** Writes the state of a grant after a checked domain transition, plus bookkeeping changes. */
export async function updateGrant(tx: Executor, grant: Grant, changes: GrantChanges = {}): Promise<void> {
  await tx
    .updateTable('grants')
    .set({
      ...stateColumns(grant),
      ...(changes.handle !== undefined ? { handle: changes.handle === null ? null : JSON.stringify(changes.handle) } : {}),
      ...(changes.lastError !== undefined ? { last_error: changes.lastError } : {}),
      ...(changes.provisionAttempt ? { provision_attempts: sql<number>`provision_attempts + 1` } : {}),
    })
    .where('id', '=', grant.id)
    .execute();
  if (grant.status !== 'provisioning' && grant.status !== 'active') await eraseCredentials(tx, [grant.id]);
}

/**
 * The other grants giving the same access at the target that have not ended. Read under the
 * access key's lock (lockAccessKeys), which is what makes two revokes, or a revoke and a provision,
 * of one access decide one after the other; the rows themselves are not locked.
 */
export async function liveGrantsForKey(tx: Executor, accessKey: string, exceptId: string): Promise<StoredGrant[]> {
  const rows = await tx
    .selectFrom('grants')
    .selectAll()
    .where('access_key', '=', accessKey)
    .where('status', 'in', ['provisioning', 'active', 'revoking'])
    .where('id', '<>', exceptId)
    .orderBy('id')
    .execute();
  return rows.map(toGrant);
}

/** Advisory-lock namespace for access keys ("LAPK"), apart from the workers' (jobs.ts). */
export const ACCESS_KEY_LOCK_NAMESPACE = 0x4c41504b;

/** An access key's lock id: 32 bits of its SHA-256 (two keys sharing one only wait for each other). */
export function accessKeyLockId(accessKey: string): number {
  return createHash('sha256').update(accessKey).digest().readInt32BE(0);
}

/**
 * Locks access keys until the transaction ends, in one global order (ascending lock id), so any
 * two transactions locking overlapping sets of keys queue instead of deadlocking.
 * NB. Every job that decides about an access at its target (provision, revoke, expiry) takes its
 * key's lock BEFORE any grant row: taking a grant row first and the key's other grants after made
 * overlapping grants of one key deadlock each other (issue 9). On PGlite's single session the
 * lock is re-entrant and transactions run one at a time, so it never waits.
 */
export async function lockAccessKeys(tx: Executor, accessKeys: readonly string[]): Promise<void> {
  const ids = [...new Set(accessKeys.map(accessKeyLockId))].sort((a, b) => a - b);
  if (ids.length === 0) return;
  await sql`SELECT pg_advisory_xact_lock(${ACCESS_KEY_LOCK_NAMESPACE}, k) FROM unnest(${ids}::int4[]) WITH ORDINALITY AS t(k, n) ORDER BY n`.execute(tx);
}

/** The access keys of these grants (immutable, so read without locks; missing ids are skipped). */
export async function accessKeysOf(tx: Executor, grantIds: readonly string[]): Promise<Map<string, string>> {
  if (grantIds.length === 0) return new Map();
  const rows = await tx
    .selectFrom('grants')
    .select(['id', 'access_key'])
    .where('id', 'in', [...new Set(grantIds)])
    .execute();
  return new Map(rows.map((row) => [row.id, row.access_key]));
}

export interface GrantFilter {
  readonly principalId?: string;
  readonly statuses?: readonly Grant['status'][];
  readonly target?: string;
  /** Continues a previous page: ids are time-ordered, so "older than this id" is stable under inserts. */
  readonly beforeId?: string;
  readonly limit?: number;
}

/** Newest first (by id, which is time-ordered). */
export async function listGrants(tx: Executor, filter: GrantFilter = {}): Promise<StoredGrant[]> {
  let query = tx.selectFrom('grants').selectAll();
  if (filter.principalId) query = query.where('principal_id', '=', filter.principalId);
  if (filter.statuses && filter.statuses.length > 0) query = query.where('status', 'in', [...filter.statuses]);
  if (filter.target) query = query.where('target', '=', filter.target);
  if (filter.beforeId) query = query.where('id', '<', filter.beforeId);
  const rows = await query
    .orderBy('id', 'desc')
    .limit(Math.min(filter.limit ?? 100, 10_000))
    .execute();
  return rows.map(toGrant);
}

/**
 * Grants whose access should be gone by now but is not confirmed gone: active past their expiry,
 * or revoking for longer than the grace period. The overdue-revocation metric.
 */
export async function countOverdueRevocations(tx: Executor, graceMs: number): Promise<number> {
  const cutoff = sql<Date>`now() - ${`${graceMs} milliseconds`}::interval`;
  const row = await tx
    .selectFrom('grants')
    .select((eb) => eb.fn.countAll<string>().as('n'))
    .where((eb) =>
      eb.or([eb.and([eb('status', '=', 'active'), eb('expires_at', '<', cutoff)]), eb.and([eb('status', '=', 'revoking'), eb('ended_at', '<', cutoff)])]),
    )
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

/** Several grants, locked for change in id order (a fixed order keeps concurrent batches from deadlocking). */
export async function getGrantsForUpdate(tx: Executor, ids: readonly string[]): Promise<Map<string, StoredGrant>> {
  if (ids.length === 0) return new Map();
  const rows = await tx
    .selectFrom('grants')
    .selectAll()
    .where('id', 'in', [...ids])
    .orderBy('id')
    .forUpdate()
    .execute();
  return new Map(rows.map((row) => [row.id, toGrant(row)]));
}

/** Every grant not yet ended that gives one of these accesses, read under their keys' locks (see liveGrantsForKey). */
export async function liveGrantsForKeys(tx: Executor, accessKeys: readonly string[]): Promise<StoredGrant[]> {
  if (accessKeys.length === 0) return [];
  const rows = await tx
    .selectFrom('grants')
    .selectAll()
    .where('access_key', 'in', [...new Set(accessKeys)])
    .where('status', 'in', ['provisioning', 'active', 'revoking'])
    .orderBy('id')
    .execute();
  return rows.map(toGrant);
}

/** Writes the state of many grants after checked domain transitions, in one statement. */
export async function updateGrantStates(
  tx: Executor,
  grants: readonly Grant[],
  changes: { coveredBy?: ReadonlyMap<string, string>; clearError?: boolean; revokeAttempt?: boolean } = {},
): Promise<void> {
  if (grants.length === 0) return;
  const column = <T>(pick: (g: Grant) => T) => grants.map(pick);
  await sql`
    UPDATE grants AS g SET
      status = v.status,
      end_reason = v.end_reason,
      ended_by = v.ended_by,
      ended_at = v.ended_at,
      covered_by = COALESCE(v.covered_by, g.covered_by),
      last_error = CASE WHEN ${changes.clearError ?? false} THEN NULL ELSE g.last_error END,
      propagation_pending = CASE WHEN v.status IN ('revoked', 'failed') THEN NULL ELSE g.propagation_pending END,
      revoke_attempts = g.revoke_attempts + CASE WHEN ${changes.revokeAttempt ?? false} THEN 1 ELSE 0 END
    FROM unnest(${column((g) => g.id)}::text[], ${column((g) => g.status)}::text[], ${column((g) => g.endReason)}::text[],
                ${column((g) => g.endedBy)}::text[], ${column((g) => g.endedAt?.toISOString() ?? null)}::timestamptz[],
                ${column((g) => changes.coveredBy?.get(g.id) ?? null)}::text[])
      AS v(id, status, end_reason, ended_by, ended_at, covered_by)
    WHERE g.id = v.id`.execute(tx);
  await eraseCredentials(
    tx,
    grants.filter((g) => g.status !== 'provisioning' && g.status !== 'active').map((g) => g.id),
  );
}

/** The target accepted the revoke but cannot confirm it yet (why); clears the last error, since the call itself worked. */
export async function setGrantPropagationPending(tx: Executor, grantId: string, reason: string): Promise<void> {
  await tx
    .updateTable('grants')
    .set({ propagation_pending: reason.slice(0, 2000), last_error: null })
    .where('id', '=', grantId)
    .execute();
}

/** Records the last error a target call for this grant returned. */
export async function setGrantLastError(tx: Executor, grantId: string, error: string): Promise<void> {
  await tx.updateTable('grants').set({ last_error: error }).where('id', '=', grantId).execute();
}

/**
 * The active grant of this entitlement to this principal that lasts longest, if one is in force now
 * (database clock: gone at expires_at + 0).
 */
export async function findGrantInForce(
  db: Executor,
  principalId: string,
  target: string,
  entitlement: string,
): Promise<{ id: string; expiresAt: Date } | undefined> {
  const row = await db
    .selectFrom('grants')
    .select(['id', 'expires_at'])
    .where('principal_id', '=', principalId)
    .where('target', '=', target)
    .where('entitlement', '=', entitlement)
    .where('status', '=', 'active')
    .where('expires_at', '>', sql<Date>`clock_timestamp()`)
    .orderBy('expires_at', 'desc')
    .executeTakeFirst();
  return row ? { id: row.id, expiresAt: new Date(row.expires_at!) } : undefined;
}

/** Grants by id, in one query (the notification outbox reads a revoke batch's grants at once). */
export async function getGrantsByIds(tx: Executor, ids: readonly string[]): Promise<Map<string, StoredGrant>> {
  if (ids.length === 0) return new Map();
  const rows = await tx
    .selectFrom('grants')
    .selectAll()
    .where('id', 'in', [...new Set(ids)])
    .execute();
  return new Map(rows.map((row) => [row.id, toGrant(row)]));
}
