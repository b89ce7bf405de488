import type { AuthConfig } from '../config/types.js';
import { LapseError } from '../domain/errors.js';
import { countLoginFailures, getLocalSignInUser, getUserByName, recordLoginFailure, setUserPasswordHash, type Executor } from '../store/index.js';
import { auditedChange } from './audited.js';
import { checkPasswordPolicy, hashPassword, verifyPassword } from './passwords.js';
import { endAllSessions } from './sessions.js';

export interface SignInUser {
  readonly id: string;
  readonly name: string;
  readonly kind: 'user' | 'service';
  readonly groups: readonly string[];
}

export interface PasswordAttempt {
  readonly username: string;
  readonly password: string;
  readonly ip: string;
}

const HOUR_MS = 3_600_000;
const MINUTE_MS = 60_000;

/** Failures are counted under the name as typed (normalised), so unknown names lock like real ones. */
function accountKey(username: string): string {
  return username.trim().toLowerCase().slice(0, 256);
}

/**
 * Checks a local password with the login limits: per IP (failures in the last minute) and per
 * account (failures in the last hour; once over, even the right password is refused until the
 * window passes). Unknown users cost a hash like known ones and get the same answer. Every
 * outcome is audited: auth.login_failed, auth.locked, auth.throttled (success is audited by the
 * caller with the session it creates).
 */
export async function checkLocalPassword(db: Executor, attempt: PasswordAttempt, limits: AuthConfig['loginLimits']): Promise<SignInUser> {
  const account = accountKey(attempt.username);
  const ip = attempt.ip.slice(0, 64);
  const refuse = async (action: string, data: Record<string, unknown>, error: LapseError): Promise<never> => {
    await auditedChange(db, async (_tx, _now, audit) => audit({ action, actor: 'anonymous', subject: account, data: { ip, ...data } }));
    throw error;
  };

  const byIp = await countLoginFailures(db, 'ip', ip, MINUTE_MS);
  if (byIp.count >= limits.perIpPerMinute) {
    return refuse(
      'auth.throttled',
      { failuresLastMinute: byIp.count },
      new LapseError('rate_limited', 'too many failed sign-ins from your address; wait a minute and try again', {
        hint: 'The limit is auth.loginLimits.perIpPerMinute.',
      }),
    );
  }
  const byAccount = await countLoginFailures(db, 'account', account, HOUR_MS);
  if (byAccount.count >= limits.perAccountPerHour) {
    const until = new Date((byAccount.oldest?.getTime() ?? Date.now()) + HOUR_MS);
    return refuse(
      'auth.locked',
      { failuresLastHour: byAccount.count },
      new LapseError('rate_limited', `too many failed sign-ins for this account; it is locked until ${until.toISOString()}`, {
        hint: 'Wait until then, or ask an admin to check the audit log (auth.login_failed) for who is guessing.',
      }),
    );
  }

  const user = await getLocalSignInUser(db, account);
  const ok = await verifyPassword(user?.password_hash ?? null, attempt.password);
  if (ok && user) return { id: user.id, name: user.name, kind: user.kind, groups: user.groups };

  await auditedChange(db, async (tx, now, audit) => {
    // NB. Pruning here keeps the table to about an hour of failures without a separate job.
    await recordLoginFailure(tx, { account, ip, at: now }, new Date(now.getTime() - HOUR_MS), Math.random() < 0.01);
    audit({
      action: 'auth.login_failed',
      actor: 'anonymous',
      subject: account,
      data: { ip, reason: user ? (user.password_hash ? 'wrong password' : 'no password set') : 'unknown user' },
    });
  });
  throw new LapseError('unauthenticated', 'the user name or password is wrong', {
    hint: 'Check both and try again; repeated failures lock the account for up to an hour.',
  });
}

/** A user by name with where it comes from (local or OIDC), whatever its kind or state; undefined if none. */
export async function findAccount(
  db: Executor,
  name: string,
): Promise<{ id: string; name: string; kind: 'user' | 'service'; source: 'local' | 'oidc' } | undefined> {
  const row = await getUserByName(db, name);
  return row ? { id: row.id, name: row.name, kind: row.kind, source: row.source } : undefined;
}

/** Sets (or replaces) a local user's password and signs them out everywhere. */
export async function setPassword(tx: Executor, userId: string, password: string): Promise<void> {
  checkPasswordPolicy(password);
  const passwordHash = await hashPassword(password);
  await setUserPasswordHash(tx, userId, passwordHash);
  await endAllSessions(tx, userId);
}
