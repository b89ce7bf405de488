import { sql, type Insertable } from 'kysely';
import type { Executor } from './executor.js';
import type { ScimTokensTable } from './schema.js';

/**
 * People and groups a directory manages (SCIM pushes, LDAP sync) and the SCIM bearer tokens.
 * src/engine/directory.ts decides the rules; the engine's deprovisioning ends what people hold.
 */

export type Directory = 'scim' | 'ldap';

const personColumns = [
  'id',
  'name',
  'kind',
  'groups',
  'created_at',
  'disabled_at',
  'directory',
  'directory_id',
  'display_name',
  'email',
  'source',
  'external_id',
] as const;

/** A person as a directory sees them, with the directory groups they are in. */
export interface DirectoryPersonRow {
  readonly id: string;
  readonly name: string;
  readonly directoryId: string | null;
  readonly displayName: string | null;
  readonly email: string | null;
  readonly active: boolean;
  readonly createdAt: Date;
  readonly groups: readonly { readonly id: string; readonly displayName: string }[];
}

export interface PersonFilter {
  readonly name?: string;
  readonly directoryId?: string;
  readonly id?: string;
}

/** People the directory manages, oldest first, a page at a time, with the total matching. */
export async function listDirectoryPeople(
  db: Executor,
  directory: Directory,
  filter: PersonFilter,
  page: { offset: number; limit: number },
): Promise<{ total: number; people: DirectoryPersonRow[] }> {
  let query = db.selectFrom('users').where('directory', '=', directory);
  if (filter.name !== undefined) query = query.where('name', '=', filter.name);
  if (filter.directoryId !== undefined) query = query.where('directory_id', '=', filter.directoryId);
  if (filter.id !== undefined) query = query.where('id', '=', filter.id);
  const counted = await query.select((eb) => eb.fn.countAll<string>().as('n')).executeTakeFirst();
  const rows = page.limit === 0 ? [] : await query.select(personColumns).orderBy('id').offset(page.offset).limit(page.limit).execute();
  const memberships = await groupsOfPeople(
    db,
    rows.map((r) => r.id),
  );
  return {
    total: Number(counted?.n ?? 0),
    people: rows.map((r) => ({
      id: r.id,
      name: r.name,
      directoryId: r.directory_id,
      displayName: r.display_name,
      email: r.email,
      active: r.disabled_at === null,
      createdAt: new Date(r.created_at),
      groups: memberships.get(r.id) ?? [],
    })),
  };
}

async function groupsOfPeople(db: Executor, userIds: readonly string[]) {
  const out = new Map<string, { id: string; displayName: string }[]>();
  if (userIds.length === 0) return out;
  const rows = await db
    .selectFrom('directory_group_members as m')
    .innerJoin('directory_groups as g', 'g.id', 'm.group_id')
    .select(['m.user_id', 'g.id', 'g.display_name'])
    .where('m.user_id', 'in', [...userIds])
    .orderBy('g.display_name')
    .execute();
  for (const row of rows) {
    const list = out.get(row.user_id) ?? [];
    list.push({ id: row.id, displayName: row.display_name });
    out.set(row.user_id, list);
  }
  return out;
}

/** The user of this name with the directory columns, or undefined. */
export async function getPersonByName(db: Executor, name: string) {
  return db.selectFrom('users').select(personColumns).where('name', '=', name).executeTakeFirst();
}

export async function getPersonById(db: Executor, id: string) {
  return db.selectFrom('users').select(personColumns).where('id', '=', id).executeTakeFirst();
}

/** Sets who a directory says a person is (name, id there, display name, email). */
export async function updateDirectoryPerson(
  tx: Executor,
  userId: string,
  fields: { name: string; directoryId: string | null; displayName: string | null; email: string | null; directory: Directory | null },
): Promise<void> {
  await tx
    .updateTable('users')
    .set({ name: fields.name, directory_id: fields.directoryId, display_name: fields.displayName, email: fields.email, directory: fields.directory })
    .where('id', '=', userId)
    .execute();
}

// Groups

export interface DirectoryGroupRow {
  readonly id: string;
  readonly displayName: string;
  readonly directoryId: string | null;
  readonly createdAt: Date;
  readonly updatedAt: Date;
  readonly members: readonly { readonly id: string; readonly name: string }[];
}

export interface GroupFilter {
  readonly displayName?: string;
  readonly directoryId?: string;
  readonly id?: string;
  /** Only groups with this user among their members. */
  readonly memberId?: string;
}

export async function listDirectoryGroups(
  db: Executor,
  directory: Directory,
  filter: GroupFilter,
  page: { offset: number; limit: number; withMembers: boolean },
): Promise<{ total: number; groups: DirectoryGroupRow[] }> {
  let query = db.selectFrom('directory_groups as g').where('g.directory', '=', directory);
  if (filter.displayName !== undefined) query = query.where('g.display_name', '=', filter.displayName);
  if (filter.directoryId !== undefined) query = query.where('g.directory_id', '=', filter.directoryId);
  if (filter.id !== undefined) query = query.where('g.id', '=', filter.id);
  if (filter.memberId !== undefined) {
    const memberId = filter.memberId;
    query = query.where((eb) =>
      eb.exists(eb.selectFrom('directory_group_members as m').select('m.user_id').whereRef('m.group_id', '=', 'g.id').where('m.user_id', '=', memberId)),
    );
  }
  const counted = await query.select((eb) => eb.fn.countAll<string>().as('n')).executeTakeFirst();
  const rows =
    page.limit === 0
      ? []
      : await query
          .select(['g.id', 'g.display_name', 'g.directory_id', 'g.created_at', 'g.updated_at'])
          .orderBy('g.id')
          .offset(page.offset)
          .limit(page.limit)
          .execute();
  const members = new Map<string, { id: string; name: string }[]>();
  if (page.withMembers && rows.length > 0) {
    const found = await db
      .selectFrom('directory_group_members as m')
      .innerJoin('users as u', 'u.id', 'm.user_id')
      .select(['m.group_id', 'u.id', 'u.name'])
      .where(
        'm.group_id',
        'in',
        rows.map((r) => r.id),
      )
      .orderBy('u.id')
      .execute();
    for (const row of found) {
      const list = members.get(row.group_id) ?? [];
      list.push({ id: row.id, name: row.name });
      members.set(row.group_id, list);
    }
  }
  return {
    total: Number(counted?.n ?? 0),
    groups: rows.map((r) => ({
      id: r.id,
      displayName: r.display_name,
      directoryId: r.directory_id,
      createdAt: new Date(r.created_at),
      updatedAt: new Date(r.updated_at),
      members: members.get(r.id) ?? [],
    })),
  };
}

/** A group by id, locked for change, or undefined. */
export async function lockDirectoryGroup(tx: Executor, directory: Directory, id: string) {
  return tx.selectFrom('directory_groups').selectAll().where('id', '=', id).where('directory', '=', directory).forUpdate().executeTakeFirst();
}

export async function getDirectoryGroupByName(db: Executor, displayName: string) {
  return db.selectFrom('directory_groups').selectAll().where('display_name', '=', displayName).executeTakeFirst();
}

export async function insertDirectoryGroup(
  tx: Executor,
  row: { id: string; directory: Directory; displayName: string; directoryId: string | null; now: Date },
) {
  await tx
    .insertInto('directory_groups')
    .values({ id: row.id, directory: row.directory, display_name: row.displayName, directory_id: row.directoryId, created_at: row.now, updated_at: row.now })
    .execute();
}

export async function updateDirectoryGroup(tx: Executor, id: string, fields: { displayName: string; directoryId: string | null; now: Date }) {
  await tx
    .updateTable('directory_groups')
    .set({ display_name: fields.displayName, directory_id: fields.directoryId, updated_at: fields.now })
    .where('id', '=', id)
    .execute();
}

/** Deletes a group (its memberships go with it); returns its members' ids. */
export async function deleteDirectoryGroup(tx: Executor, id: string): Promise<string[]> {
  const members = await memberIdsOf(tx, id);
  await tx.deleteFrom('directory_groups').where('id', '=', id).execute();
  return members;
}

export async function memberIdsOf(db: Executor, groupId: string): Promise<string[]> {
  const rows = await db.selectFrom('directory_group_members').select('user_id').where('group_id', '=', groupId).execute();
  return rows.map((r) => r.user_id);
}

/** Of these user ids, the ones the directory manages (the only ones it may put in its groups). */
export async function managedUserIds(db: Executor, directory: Directory, userIds: readonly string[]): Promise<Set<string>> {
  if (userIds.length === 0) return new Set();
  const rows = await db
    .selectFrom('users')
    .select('id')
    .where('directory', '=', directory)
    .where('id', 'in', [...userIds])
    .execute();
  return new Set(rows.map((r) => r.id));
}

export async function addGroupMembers(tx: Executor, groupId: string, userIds: readonly string[]): Promise<void> {
  if (userIds.length === 0) return;
  await tx
    .insertInto('directory_group_members')
    .values(userIds.map((user_id) => ({ group_id: groupId, user_id })))
    .onConflict((oc) => oc.doNothing())
    .execute();
}

export async function removeGroupMembers(tx: Executor, groupId: string, userIds: readonly string[]): Promise<void> {
  if (userIds.length === 0) return;
  await tx
    .deleteFrom('directory_group_members')
    .where('group_id', '=', groupId)
    .where('user_id', 'in', [...userIds])
    .execute();
}

export async function removePersonFromAllGroups(tx: Executor, userId: string): Promise<string[]> {
  const rows = await tx.deleteFrom('directory_group_members').where('user_id', '=', userId).returning('group_id').execute();
  return rows.map((r) => r.group_id);
}

/**
 * Makes each of these people's `users.groups` the names of the directory groups they are in now:
 * what policies and approval stages read, so a change applies before they sign in again.
 */
export async function refreshDirectoryGroupsOf(tx: Executor, userIds: readonly string[]): Promise<void> {
  if (userIds.length === 0) return;
  await sql`
    UPDATE users u SET groups = COALESCE(
      (SELECT jsonb_agg(g.display_name ORDER BY g.display_name)
         FROM directory_group_members m JOIN directory_groups g ON g.id = m.group_id
        WHERE m.user_id = u.id),
      '[]'::jsonb)
    WHERE u.id = ANY(${[...userIds]}::text[]) AND u.directory IS NOT NULL`.execute(tx);
}

// SCIM tokens

export async function insertScimToken(tx: Executor, row: Insertable<ScimTokensTable>): Promise<void> {
  await tx.insertInto('scim_tokens').values(row).execute();
}

/** The live SCIM token with this hash (database clock), or undefined. */
export async function findLiveScimToken(db: Executor, secretHash: string) {
  return db
    .selectFrom('scim_tokens')
    .select(['id', 'name', 'last_used_at'])
    .where('secret_hash', '=', secretHash)
    .where('revoked_at', 'is', null)
    .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', sql<Date>`clock_timestamp()`)]))
    .executeTakeFirst();
}

export async function markScimTokenUsed(db: Executor, id: string): Promise<void> {
  await db
    .updateTable('scim_tokens')
    .set({ last_used_at: sql<Date>`now()` })
    .where('id', '=', id)
    .execute();
}

/** Revokes a SCIM token; true if it was live. */
export async function markScimTokenRevoked(tx: Executor, id: string): Promise<boolean> {
  const result = await tx
    .updateTable('scim_tokens')
    .set({ revoked_at: sql<Date>`now()` })
    .where('id', '=', id)
    .where('revoked_at', 'is', null)
    .executeTakeFirst();
  return Number(result.numUpdatedRows) > 0;
}
