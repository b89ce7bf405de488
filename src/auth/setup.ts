import type { EffectiveConfig } from '../config/types.js';
import { LapseError } from '../domain/errors.js';
import { anyEnabledUserIn, insertSetupToken, spendSetupToken, type Executor } from '../store/index.js';
import type { SignInUser } from './local-login.js';
import { setPassword } from './local-login.js';
import { checkPasswordPolicy } from './passwords.js';
import { createUser } from './principals.js';
import { hashSecret, newSecret, SECRET_SHAPE } from './secrets.js';

const SETUP_TOKEN_TTL_MS = 24 * 3_600_000;

/**
 * A fresh install needs a first admin, and never a default password: while no enabled user is in
 * `roles.admins` (and no OIDC provider can bring one), `lapse serve` prints a one-time setup link.
 */
export async function needsFirstAdmin(db: Executor, config: Pick<EffectiveConfig, 'auth' | 'roles'>): Promise<boolean> {
  if (config.auth.oidc) return false;
  const { users, groups } = config.roles.admins;
  if (users.length === 0 && groups.length === 0) return true;
  return !(await anyEnabledUserIn(db, users, groups));
}

/** What the first admin must be, in words for the setup output and page. */
export function firstAdminRule(config: Pick<EffectiveConfig, 'roles'>): string {
  const { users, groups } = config.roles.admins;
  if (users.length > 0) return `The first admin's user name must be one of roles.admins.users: ${users.join(', ')}.`;
  if (groups.length > 0) return `The first admin is put in the group "${groups[0]}" (roles.admins.groups), which makes them an admin.`;
  return 'roles.admins in the config names no user or group, so nobody can be an admin yet: add one (e.g. roles: { admins: { users: [root] } }) and restart.';
}

export async function createSetupToken(tx: Executor, now: Date): Promise<{ token: string; expiresAt: Date }> {
  const token = newSecret();
  const expiresAt = new Date(now.getTime() + SETUP_TOKEN_TTL_MS);
  await insertSetupToken(tx, { secretHash: hashSecret(token), createdAt: now, expiresAt });
  return { token, expiresAt };
}

/**
 * Creates the first admin with a setup token: once (the token is spent atomically), within 24
 * hours, only while there is still no admin, and only a name the config makes an admin.
 */
export async function completeSetup(
  tx: Executor,
  config: Pick<EffectiveConfig, 'auth' | 'roles'>,
  input: { token: string; username: string; password: string },
  now: Date,
): Promise<SignInUser> {
  const refuse = () =>
    new LapseError('unauthenticated', 'the setup token is not valid (unknown, used or expired)', { hint: 'Restart `lapse serve` for a new setup link.' });
  if (!SECRET_SHAPE.test(input.token)) throw refuse();
  const { users, groups } = config.roles.admins;
  if (users.length === 0 && groups.length === 0) throw new LapseError('config_invalid', firstAdminRule(config), { where: 'roles.admins' });
  if (users.length > 0 && !users.includes(input.username)) throw new LapseError('validation_failed', firstAdminRule(config), { where: 'username' });
  checkPasswordPolicy(input.password);
  const spent = await spendSetupToken(tx, hashSecret(input.token), input.username.slice(0, 128), now);
  if (!spent) throw refuse();
  if (!(await needsFirstAdmin(tx, config)))
    throw new LapseError('conflict', 'Lapse already has an admin', { hint: 'Sign in as that admin; setup links only work on a fresh install.' });
  const user = await createUser(tx, { name: input.username, groups: users.length > 0 ? [] : [groups[0]!] }, now);
  await setPassword(tx, user.id, input.password);
  return { id: user.id, name: user.name, kind: user.kind, groups: user.groups };
}
