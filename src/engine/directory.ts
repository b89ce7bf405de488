import { LapseError } from '../domain/errors.js';
import { newId } from '../domain/ids.js';
import { scimProblem, type ScimGroupFields, type ScimUserFields } from '../domain/scim.js';
import {
  addGroupMembers,
  deleteDirectoryGroup,
  getDirectoryGroupByName,
  getPersonById,
  getPersonByName,
  insertDirectoryGroup,
  insertUser,
  listDirectoryGroups,
  listDirectoryPeople,
  lockDirectoryGroup,
  lockUser,
  managedUserIds,
  memberIdsOf,
  refreshDirectoryGroupsOf,
  removeGroupMembers,
  removePersonFromAllGroups,
  updateDirectoryGroup,
  updateDirectoryPerson,
  type Directory,
  type DirectoryGroupRow,
  type DirectoryPersonRow,
  type GroupFilter,
  type PersonFilter,
} from '../store/index.js';
import { transact, type EngineContext, type UnitOfWork } from './context.js';
import { deprovisionInUnit, reenableInUnit } from './deprovisioning.js';

/**
 * People and groups a directory manages: SCIM pushes them (src/api/routes/scim.ts), the LDAP sync
 * pulls them (ldap-sync.ts). Every change is one transaction with its audit events; a person set
 * inactive or deleted is deprovisioned in the same transaction; group changes rewrite members'
 * `users.groups` at once, so policies and approval stages see them before anyone signs in again.
 */
export interface DirectoryCaller {
  readonly directory: Directory;
  /** Who acts, for the audit log: `scim:<token name>`, `ldap:<source>`. */
  readonly actor: string;
}

export type { DirectoryGroupRow, DirectoryPersonRow, GroupFilter, PersonFilter };

const notFound = (kind: 'User' | 'Group', id: string) =>
  new LapseError('not_found', `there is no ${kind} ${id.slice(0, 80)}`, { where: id.slice(0, 80), scimType: 'noTarget' });

function fieldsOf(row: NonNullable<Awaited<ReturnType<typeof getPersonById>>>): ScimUserFields {
  return { userName: row.name, externalId: row.directory_id, displayName: row.display_name, email: row.email, active: row.disabled_at === null };
}

async function requirePerson(unit: UnitOfWork, who: DirectoryCaller, id: string) {
  const row = await getPersonById(unit.tx, id);
  if (!row || row.directory !== who.directory) throw notFound('User', id);
  await lockUser(unit.tx, row.id);
  return row;
}

/** A name (or directory id) another user already holds: SCIM's `uniqueness`. */
async function refuseTaken(unit: UnitOfWork, who: DirectoryCaller, fields: ScimUserFields, selfId: string | null): Promise<void> {
  const holder = await getPersonByName(unit.tx, fields.userName);
  if (holder && holder.id !== selfId) {
    throw scimProblem(
      'uniqueness',
      `userName ${fields.userName} is taken`,
      'userName',
      'Another Lapse user has this name (a local account is never taken over).',
    );
  }
  if (fields.externalId !== null) {
    const { people } = await listDirectoryPeople(unit.tx, who.directory, { directoryId: fields.externalId }, { offset: 0, limit: 1 });
    if (people[0] && people[0].id !== selfId) throw scimProblem('uniqueness', 'externalId is held by another user', 'externalId');
  }
}

/** Turns `active` into deprovisioning or re-enabling, in this change. */
async function applyActive(
  context: EngineContext,
  unit: UnitOfWork,
  who: DirectoryCaller,
  user: { id: string; name: string },
  was: boolean,
  now: boolean,
  reason = `set inactive in ${who.directory}`,
) {
  if (was && !now) await deprovisionInUnit(context, unit, user, who.actor, reason);
  if (!was && now) await reenableInUnit(unit, user, who.actor, `set active in ${who.directory}`);
}

export function directoryUseCases(context: EngineContext) {
  const db = () => context.store.db;
  return {
    listPeople: (who: DirectoryCaller, filter: PersonFilter, page: { offset: number; limit: number }) => listDirectoryPeople(db(), who.directory, filter, page),

    async person(who: DirectoryCaller, id: string): Promise<DirectoryPersonRow> {
      const { people } = await listDirectoryPeople(db(), who.directory, { id }, { offset: 0, limit: 1 });
      if (!people[0]) throw notFound('User', id);
      return people[0];
    },

    /**
     * A new person, or an SSO user who signed in before the directory was connected (adopted:
     * never a local account, never another directory's). Inactive from the start: deprovisioned.
     */
    async createPerson(who: DirectoryCaller, fields: ScimUserFields): Promise<string> {
      return transact(context, async (unit) => {
        const existing = await getPersonByName(unit.tx, fields.userName);
        const adoptable = existing && existing.directory === null && existing.source === 'oidc' && existing.kind === 'user';
        if (existing && !adoptable) await refuseTaken(unit, who, fields, null);
        await refuseTaken(unit, who, fields, existing?.id ?? null);
        let id: string;
        if (existing) {
          id = existing.id;
          await lockUser(unit.tx, id);
          await updateDirectoryPerson(unit.tx, id, {
            name: fields.userName,
            directoryId: fields.externalId,
            displayName: fields.displayName,
            email: fields.email,
            directory: who.directory,
          });
          await refreshDirectoryGroupsOf(unit.tx, [id]);
        } else {
          id = newId('user', unit.now.getTime());
          await insertUser(unit.tx, {
            id,
            name: fields.userName,
            kind: 'user',
            groups: JSON.stringify([]),
            password_hash: null,
            created_at: unit.now,
            disabled_at: null,
            source: 'oidc',
            external_id: null,
            email: fields.email,
            directory: who.directory,
            directory_id: fields.externalId,
            display_name: fields.displayName,
          });
        }
        await unit.audit({
          action: existing ? 'user.adopted' : 'user.provisioned',
          actor: who.actor,
          subject: id,
          data: { name: fields.userName, directory: who.directory, externalId: fields.externalId, active: fields.active },
        });
        const wasActive = existing ? existing.disabled_at === null : true;
        await applyActive(context, unit, who, { id, name: fields.userName }, wasActive, fields.active);
        return id;
      });
    },

    /** PUT and PATCH: `change` gets the person as the directory last said and returns the new state. */
    async updatePerson(who: DirectoryCaller, id: string, change: (current: ScimUserFields) => ScimUserFields, reason?: string): Promise<void> {
      await transact(context, async (unit) => {
        const row = await requirePerson(unit, who, id);
        const current = fieldsOf(row);
        const next = change(current);
        if (next.userName !== current.userName || next.externalId !== current.externalId) await refuseTaken(unit, who, next, row.id);
        const changed = (['userName', 'externalId', 'displayName', 'email'] as const).filter((k) => next[k] !== current[k]);
        if (changed.length > 0) {
          await updateDirectoryPerson(unit.tx, row.id, {
            name: next.userName,
            directoryId: next.externalId,
            displayName: next.displayName,
            email: next.email,
            directory: who.directory,
          });
          await unit.audit({
            action: 'user.updated',
            actor: who.actor,
            subject: row.id,
            data: { name: next.userName, changed, ...(next.userName !== current.userName ? { renamedFrom: current.userName } : {}) },
          });
        }
        await applyActive(context, unit, who, { id: row.id, name: next.userName }, current.active, next.active, reason);
      });
    },

    /**
     * DELETE: the person is deprovisioned and leaves the directory's groups; the user row stays
     * (disabled) for the record, and the directory no longer sees it.
     */
    async deletePerson(who: DirectoryCaller, id: string): Promise<void> {
      await transact(context, async (unit) => {
        const row = await requirePerson(unit, who, id);
        await deprovisionInUnit(context, unit, row, who.actor, `deleted in ${who.directory}`);
        await removePersonFromAllGroups(unit.tx, row.id);
        await refreshDirectoryGroupsOf(unit.tx, [row.id]);
        await updateDirectoryPerson(unit.tx, row.id, { name: row.name, directoryId: null, displayName: row.display_name, email: row.email, directory: null });
        await unit.audit({ action: 'user.deleted_in_directory', actor: who.actor, subject: row.id, data: { name: row.name, directory: who.directory } });
      });
    },

    listGroups: (who: DirectoryCaller, filter: GroupFilter, page: { offset: number; limit: number; withMembers: boolean }) =>
      listDirectoryGroups(db(), who.directory, filter, page),

    async group(who: DirectoryCaller, id: string, withMembers = true): Promise<DirectoryGroupRow> {
      const { groups } = await listDirectoryGroups(db(), who.directory, { id }, { offset: 0, limit: 1, withMembers });
      if (!groups[0]) throw notFound('Group', id);
      return groups[0];
    },

    async createGroup(who: DirectoryCaller, fields: ScimGroupFields): Promise<string> {
      return transact(context, async (unit) => {
        if (await getDirectoryGroupByName(unit.tx, fields.displayName)) {
          throw scimProblem('uniqueness', `a group named ${fields.displayName} exists`, 'displayName');
        }
        await refuseUnmanaged(unit, who, fields.members);
        const id = newId('group', unit.now.getTime());
        await insertDirectoryGroup(unit.tx, { id, directory: who.directory, displayName: fields.displayName, directoryId: fields.externalId, now: unit.now });
        await addGroupMembers(unit.tx, id, fields.members);
        await refreshDirectoryGroupsOf(unit.tx, fields.members);
        await unit.audit({
          action: 'group.created',
          actor: who.actor,
          subject: id,
          data: { displayName: fields.displayName, directory: who.directory, members: fields.members.slice(0, 100), memberCount: fields.members.length },
        });
        return id;
      });
    },

    async updateGroup(who: DirectoryCaller, id: string, change: (current: ScimGroupFields) => ScimGroupFields): Promise<void> {
      await transact(context, async (unit) => {
        const row = await lockDirectoryGroup(unit.tx, who.directory, id);
        if (!row) throw notFound('Group', id);
        const before = await memberIdsOf(unit.tx, id);
        const next = change({ displayName: row.display_name, externalId: row.directory_id, members: before });
        const renamed = next.displayName !== row.display_name;
        if (renamed && (await getDirectoryGroupByName(unit.tx, next.displayName))) {
          throw scimProblem('uniqueness', `a group named ${next.displayName} exists`, 'displayName');
        }
        const had = new Set(before);
        const has = new Set(next.members);
        const added = next.members.filter((m) => !had.has(m));
        const removed = before.filter((m) => !has.has(m));
        await refuseUnmanaged(unit, who, added);
        if (renamed || next.externalId !== row.directory_id) {
          await updateDirectoryGroup(unit.tx, id, { displayName: next.displayName, directoryId: next.externalId, now: unit.now });
        }
        await addGroupMembers(unit.tx, id, added);
        await removeGroupMembers(unit.tx, id, removed);
        await refreshDirectoryGroupsOf(unit.tx, renamed ? [...new Set([...next.members, ...removed])] : [...added, ...removed]);
        if (renamed || added.length > 0 || removed.length > 0 || next.externalId !== row.directory_id) {
          await unit.audit({
            action: 'group.updated',
            actor: who.actor,
            subject: id,
            data: {
              displayName: next.displayName,
              ...(renamed ? { renamedFrom: row.display_name } : {}),
              added: added.slice(0, 100),
              removed: removed.slice(0, 100),
              addedCount: added.length,
              removedCount: removed.length,
            },
          });
        }
      });
    },

    async deleteGroup(who: DirectoryCaller, id: string): Promise<void> {
      await transact(context, async (unit) => {
        const row = await lockDirectoryGroup(unit.tx, who.directory, id);
        if (!row) throw notFound('Group', id);
        const members = await deleteDirectoryGroup(unit.tx, id);
        await refreshDirectoryGroupsOf(unit.tx, members);
        await unit.audit({ action: 'group.deleted', actor: who.actor, subject: id, data: { displayName: row.display_name, memberCount: members.length } });
      });
    },
  };
}

export type DirectoryUseCases = ReturnType<typeof directoryUseCases>;

/** A directory puts only people it manages in its groups (never a local admin account). */
async function refuseUnmanaged(unit: UnitOfWork, who: DirectoryCaller, userIds: readonly string[]): Promise<void> {
  const managed = await managedUserIds(unit.tx, who.directory, userIds);
  const stranger = userIds.find((id) => !managed.has(id));
  if (stranger !== undefined) {
    throw scimProblem(
      'invalidValue',
      `member ${stranger.slice(0, 64)} is not a user this directory manages`,
      'members',
      `Provision the user through ${who.directory} first.`,
    );
  }
}
