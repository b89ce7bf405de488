import { createHash } from 'node:crypto';
import { newId } from '../domain/ids.js';
import type { Principal } from '../domain/principal.js';
import {
  deleteOldSessions,
  endSessionById,
  endSessionsOfUser,
  findLiveSession,
  insertSession,
  markSessionSeen,
  setSessionMfaAt,
  type Executor,
} from '../store/index.js';
import { hashSecret, newSecret, SECRET_SHAPE } from './secrets.js';

/** The timeouts in force (config `auth.sessions`), read at every check so a reload applies at once. */
export interface SessionTimeouts {
  readonly idleTimeoutMs: number;
  readonly absoluteTimeoutMs: number;
}

export type SignInMethod = 'password' | 'oidc' | 'setup';

const SESSION_RETENTION_MS = 30 * 86_400_000;

export interface NewSession {
  readonly id: string;
  /** The cookie value: shown to the browser once, stored only as its hash. */
  readonly secret: string;
  readonly csrfToken: string;
  readonly expiresAt: Date;
}

export interface ActiveSession {
  readonly id: string;
  readonly userId: string;
  readonly principal: Principal;
  readonly method: SignInMethod;
  readonly createdAt: Date;
  readonly lastSeenAt: Date;
  readonly expiresAt: Date;
  readonly mfaAt: Date | null;
  readonly csrfToken: string;
}

/**
 * The CSRF token of a session, derived from its secret: only someone holding the cookie can
 * compute it, a page on another origin cannot read it, and nothing extra needs storing.
 */
export function csrfTokenFor(secret: string): string {
  return createHash('sha256').update(`lapse-csrf\0${secret}`).digest('base64url');
}

export async function createSession(
  db: Executor,
  input: { userId: string; method: SignInMethod; ip?: string | undefined; userAgent?: string | undefined },
  timeouts: SessionTimeouts,
  now: Date,
): Promise<NewSession> {
  const secret = newSecret();
  const id = newId('session', now.getTime());
  // NB. Pruned per user at each sign-in: rows ended or expired over 30 days ago are of no use (the
  // audit log keeps the record), and this bounds the table without a separate job.
  await deleteOldSessions(db, input.userId, new Date(now.getTime() - SESSION_RETENTION_MS));
  const expiresAt = new Date(now.getTime() + timeouts.absoluteTimeoutMs);
  await insertSession(db, {
    id,
    secret_hash: hashSecret(secret),
    user_id: input.userId,
    method: input.method,
    created_at: now,
    last_seen_at: now,
    expires_at: expiresAt,
    mfa_at: null,
    ended_at: null,
    ip: input.ip?.slice(0, 64) ?? null,
    user_agent: input.userAgent?.slice(0, 512) ?? null,
  });
  return { id, secret, csrfToken: csrfTokenFor(secret), expiresAt };
}

/**
 * The live session a cookie names, or null: unknown, malformed, ended, past its absolute limit,
 * idle too long, or its user disabled all look the same. Judged by the database clock.
 */
export async function findSession(db: Executor, secret: string, timeouts: SessionTimeouts): Promise<ActiveSession | null> {
  if (!SECRET_SHAPE.test(secret)) return null;
  const row = await findLiveSession(db, hashSecret(secret), timeouts);
  if (!row) return null;
  return {
    id: row.id,
    userId: row.user_id,
    principal: { id: row.name, kind: row.kind, groups: row.groups },
    method: row.method,
    createdAt: new Date(row.created_at),
    lastSeenAt: new Date(row.last_seen_at),
    expiresAt: new Date(row.expires_at),
    mfaAt: row.mfa_at ? new Date(row.mfa_at) : null,
    csrfToken: csrfTokenFor(secret),
  };
}

/**
 * Records activity (the idle clock restarts). Written at most every tenth of the idle timeout
 * (and at most once a minute), so most authenticated reads stay reads.
 */
export async function touchSession(db: Executor, session: ActiveSession, timeouts: SessionTimeouts): Promise<void> {
  const every = Math.min(60_000, Math.floor(timeouts.idleTimeoutMs / 10));
  if (Date.now() - session.lastSeenAt.getTime() < every) return;
  await markSessionSeen(db, session.id);
}

/** Ends one session (sign-out). True if it was live. */
export async function endSession(db: Executor, sessionId: string): Promise<boolean> {
  return endSessionById(db, sessionId);
}

/** Sign-out everywhere: ends every session of the user; returns how many were live. */
export async function endAllSessions(db: Executor, userId: string): Promise<number> {
  return endSessionsOfUser(db, userId);
}

/** Step-up: a second factor was verified in this session at `at` (called by the MFA routes). */
export async function markSessionMfa(db: Executor, sessionId: string, at: Date): Promise<void> {
  await setSessionMfaAt(db, sessionId, at);
}
