import { z } from 'zod';
import { LapseError } from '../domain/errors.js';
import { newId } from '../domain/ids.js';
import { PERSON_NAME_PATTERN } from '../domain/principal.js';
import { getUserByName, insertUser, setUserEmail, type Executor } from '../store/index.js';

/** Local principals: users and service identities that Lapse itself knows (SSO users arrive with OIDC). */
export interface LocalUser {
  readonly id: string;
  readonly name: string;
  readonly kind: 'user' | 'service';
  readonly groups: readonly string[];
  readonly disabled: boolean;
}

export const userNameSchema = z.string().min(1).max(128).regex(PERSON_NAME_PATTERN, 'use lower-case letters, digits, "_", ".", "@" and "-"');
const groupSchema = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[a-z0-9][a-z0-9_.-]*$/, 'use lower-case letters, digits, "_", "." and "-"');

export async function createUser(tx: Executor, input: { name: string; groups: readonly string[]; kind?: 'user' | 'service' }, now: Date): Promise<LocalUser> {
  const name = userNameSchema.safeParse(input.name);
  if (!name.success)
    throw new LapseError('validation_failed', `"${input.name.slice(0, 40)}" is not a valid user name: ${name.error.issues[0]?.message}`, { where: 'name' });
  const groups = z
    .array(groupSchema)
    .max(100)
    .safeParse([...new Set(input.groups)]);
  if (!groups.success) throw new LapseError('validation_failed', `invalid group: ${groups.error.issues[0]?.message}`, { where: 'groups' });
  const existing = await getUserByName(tx, name.data);
  if (existing) throw new LapseError('conflict', `user ${name.data} already exists`, { where: name.data, hint: 'Pick another name.' });
  const user: LocalUser = { id: newId('user'), name: name.data, kind: input.kind ?? 'user', groups: groups.data, disabled: false };
  await insertUser(tx, {
    id: user.id,
    name: user.name,
    kind: user.kind,
    groups: JSON.stringify(user.groups),
    password_hash: null,
    created_at: now,
    disabled_at: null,
  });
  return user;
}

export async function findUserByName(tx: Executor, name: string): Promise<LocalUser | undefined> {
  const row = await getUserByName(tx, name);
  return row ? { id: row.id, name: row.name, kind: row.kind, groups: row.groups, disabled: row.disabled_at !== null } : undefined;
}

/** An email address as Lapse keeps it for notifications: bounded, lower-cased, one address. */
export const emailAddressSchema = z.email({ message: 'not an email address, e.g. dana@example.com' }).max(320);

/**
 * Sets (or, with null, clears) where a user's email notifications go. Admins set it with
 * `lapse admin user set-email`; OIDC sign-in fills it from the email claim.
 */
export async function setEmailAddress(tx: Executor, name: string, email: string | null): Promise<string | null> {
  const checked = email === null ? null : emailAddressSchema.safeParse(email.trim());
  if (checked && !checked.success) {
    throw new LapseError('validation_failed', `"${email!.slice(0, 80)}" is ${checked.error.issues[0]?.message}`, { where: 'email' });
  }
  const value = checked ? checked.data.toLowerCase() : null;
  if (!(await setUserEmail(tx, name, value))) {
    throw new LapseError('not_found', `there is no user ${name}`, { where: name, hint: 'Create it with `lapse admin user create`, or let them sign in once.' });
  }
  return value;
}
