import { sql, type Insertable } from 'kysely';
import type { Executor } from './executor.js';
import type { SessionsTable } from './schema.js';

/** Browser sessions: stored by the hash of their cookie secret (src/auth/sessions.ts decides the rules). */

/** Deletes the user's sessions that ended or expired before `before` (kept until then for the record). */
export async function deleteOldSessions(db: Executor, userId: string, before: Date): Promise<void> {
  await db
    .deleteFrom('sessions')
    .where('user_id', '=', userId)
    .where((eb) => eb.or([eb('ended_at', '<', before), eb('expires_at', '<', before)]))
    .execute();
}

export async function insertSession(db: Executor, row: Insertable<SessionsTable>): Promise<void> {
  await db.insertInto('sessions').values(row).execute();
}

/**
 * The live session with this secret hash and its user, or undefined: ended, past its absolute
 * limit, idle too long, or its user disabled. Judged by the database clock.
 */
export async function findLiveSession(db: Executor, secretHash: string, limits: { absoluteTimeoutMs: number; idleTimeoutMs: number }) {
  return db
    .selectFrom('sessions as s')
    .innerJoin('users as u', 'u.id', 's.user_id')
    .select(['s.id', 's.user_id', 's.method', 's.created_at', 's.last_seen_at', 's.expires_at', 's.mfa_at', 'u.name', 'u.kind', 'u.groups'])
    .where('s.secret_hash', '=', secretHash)
    .where('s.ended_at', 'is', null)
    .where('u.disabled_at', 'is', null)
    .where('s.expires_at', '>', sql<Date>`clock_timestamp()`)
    .where('s.created_at', '>', sql<Date>`clock_timestamp() - ${limits.absoluteTimeoutMs} * interval '1 millisecond'`)
    .where('s.last_seen_at', '>', sql<Date>`clock_timestamp() - ${limits.idleTimeoutMs} * interval '1 millisecond'`)
    .executeTakeFirst();
}

/** Restarts a live session's idle clock (database time). */
export async function markSessionSeen(db: Executor, sessionId: string): Promise<void> {
  await db
    .updateTable('sessions')
    .set({ last_seen_at: sql<Date>`clock_timestamp()` })
    .where('id', '=', sessionId)
    .where('ended_at', 'is', null)
    .execute();
}

/** Ends one live session; true if it was live. */
export async function endSessionById(db: Executor, sessionId: string): Promise<boolean> {
  const result = await db
    .updateTable('sessions')
    .set({ ended_at: sql<Date>`clock_timestamp()` })
    .where('id', '=', sessionId)
    .where('ended_at', 'is', null)
    .executeTakeFirst();
  return Number(result.numUpdatedRows) > 0;
}

/** Ends every live session of a user; returns how many were live. */
export async function endSessionsOfUser(db: Executor, userId: string): Promise<number> {
  const result = await db
    .updateTable('sessions')
    .set({ ended_at: sql<Date>`clock_timestamp()` })
    .where('user_id', '=', userId)
    .where('ended_at', 'is', null)
    .executeTakeFirst();
  return Number(result.numUpdatedRows);
}

/** Records when a second factor was last verified in a live session. */
export async function setSessionMfaAt(db: Executor, sessionId: string, at: Date): Promise<void> {
  await db.updateTable('sessions').set({ mfa_at: at }).where('id', '=', sessionId).where('ended_at', 'is', null).execute();
}
