import { z } from 'zod';
import { LapseError } from '../domain/errors.js';
import { newId } from '../domain/ids.js';
import { getUserByExternalId, getUserByName, insertUser, linkUserExternalId, setUserEmail, setUserNameAndGroups, type Executor } from '../store/index.js';
import type { SignInUser } from './local-login.js';
import { emailAddressSchema, userNameSchema } from './principals.js';

/** Group names from an IdP: kept as the IdP spells them (config matches them exactly), but bounded. */
const idpGroups = z.array(z.string().min(1).max(256)).max(500);

/** The groups claim as a list: IdPs send an array, some a single string, some nothing. */
export function groupsFromClaim(value: unknown): string[] {
  const list = typeof value === 'string' ? [value] : Array.isArray(value) ? value.filter((g): g is string => typeof g === 'string') : [];
  const parsed = idpGroups.safeParse([...new Set(list)]);
  if (!parsed.success) {
    throw new LapseError('validation_failed', 'the identity provider sent more than 500 groups, or a group name over 256 characters', {
      where: 'groups claim',
      hint: 'Limit the groups the IdP puts in the token to the ones Lapse policies use.',
    });
  }
  return parsed.data;
}

/**
 * The Lapse user for an OIDC identity, created on first sign-in and refreshed on every one (name
 * and groups follow the IdP). Identity is `<issuer>#<sub>`; a name already held by a local user or
 * by another IdP identity is refused rather than merged, so an IdP account can never take over a
 * local admin by choosing its name.
 */
export async function upsertOidcUser(
  tx: Executor,
  input: { issuer: string; subject: string; username: string; groups: readonly string[]; email?: string | undefined },
  now: Date,
): Promise<SignInUser & { created: boolean }> {
  const externalId = `${input.issuer}#${input.subject}`.slice(0, 2048);
  // NB. An address the IdP sends that is not one (or too long) is ignored, not a failed sign-in.
  const parsedEmail = input.email === undefined ? undefined : emailAddressSchema.safeParse(input.email.trim());
  const email = parsedEmail?.success ? parsedEmail.data.toLowerCase() : undefined;
  const name = userNameSchema.safeParse(input.username.trim().toLowerCase());
  if (!name.success) {
    throw new LapseError(
      'validation_failed',
      `the identity provider's user name "${input.username.slice(0, 60)}" is not usable in Lapse: ${name.error.issues[0]?.message}`,
      {
        where: 'username claim',
        hint: 'Point auth.oidc.usernameClaim at a claim with simple names (preferred_username or email).',
      },
    );
  }
  let existing = await getUserByExternalId(tx, externalId);
  const holder = await getUserByName(tx, name.data);
  // NB. A person a directory (SCIM, LDAP) created has no IdP identity until their first sign-in:
  // that sign-in links it. Only directory-made SSO users are linked, never a local account.
  if (!existing && holder && holder.external_id === null && holder.directory !== null && holder.source === 'oidc') {
    await linkUserExternalId(tx, holder.id, externalId);
    existing = { ...holder, external_id: externalId };
  }
  if (holder && holder.external_id !== externalId && holder.id !== existing?.id) {
    throw new LapseError('conflict', `the name ${name.data} already belongs to another Lapse user`, {
      where: 'username claim',
      hint: 'An admin must rename or remove the other user (a local account cannot be taken over by single sign-on).',
    });
  }
  if (existing) {
    if (existing.disabled_at !== null) throw new LapseError('unauthenticated', 'this account is disabled in Lapse', { hint: 'Ask an admin.' });
    if (existing.directory !== null) {
      // The directory owns this person's name and groups (they change between sign-ins); sign-in keeps them.
      if (email) await setUserEmail(tx, existing.name, email);
      return { id: existing.id, name: existing.name, kind: existing.kind, groups: existing.groups, created: false };
    }
    await setUserNameAndGroups(tx, existing.id, name.data, input.groups);
    if (email) await setUserEmail(tx, name.data, email);
    return { id: existing.id, name: name.data, kind: existing.kind, groups: input.groups, created: false };
  }
  const id = newId('user', now.getTime());
  await insertUser(tx, {
    id,
    name: name.data,
    kind: 'user',
    groups: JSON.stringify(input.groups),
    password_hash: null,
    created_at: now,
    disabled_at: null,
    source: 'oidc',
    external_id: externalId,
  });
  if (email) await setUserEmail(tx, name.data, email);
  return { id, name: name.data, kind: 'user', groups: input.groups, created: true };
}
