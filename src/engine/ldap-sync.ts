import { LapseError } from '../domain/errors.js';
import type { ScimUserFields } from '../domain/scim.js';
import { readLdapDirectory, type LdapSnapshot } from '../integrations/index.js';
import type { LdapSyncConfig } from '../config/types.js';
import { completeJob, ensureJob, listDirectoryGroups, listDirectoryPeople, rescheduleJob, type Job } from '../store/index.js';
import { transact, type EngineContext } from './context.js';
import { directoryUseCases, type DirectoryCaller } from './directory.js';

/**
 * The LDAP / Active Directory sync (`identity.ldap`, docs/identity.md): read the directory (outside
 * any transaction), then make Lapse's LDAP-managed people and groups match it, one person or group
 * per transaction. A person who disappears or is disabled there is deprovisioned; one who comes
 * back is enabled again (nothing they held returns). Runs as the durable `ldap_sync` job every
 * `identity.ldap.interval`, shared by replicas, and on demand (`lapse admin ldap-sync`).
 */
export interface LdapSyncReport {
  readonly people: number;
  readonly created: number;
  readonly updated: number;
  readonly deprovisioned: number;
  readonly groups: number;
  readonly groupsDeleted: number;
  readonly skipped: readonly { readonly dn: string; readonly reason: string }[];
}

const LDAP_JOB_SUBJECT = 'ldap';
const ALL = { offset: 0, limit: 1_000_000 };

export interface LdapSyncOptions {
  readonly actor?: string;
  /** Reads the directory; tests may pass their own. Default: readLdapDirectory. */
  readonly read?: (settings: LdapSyncConfig) => Promise<LdapSnapshot>;
}

export async function syncLdap(context: EngineContext, options: LdapSyncOptions = {}): Promise<LdapSyncReport> {
  const settings = context.config().identity.ldap;
  if (!settings) {
    throw new LapseError('config_invalid', 'identity.ldap is not configured', { where: 'identity.ldap', hint: 'See docs/identity.md for the settings.' });
  }
  const snapshot = await (options.read ?? readLdapDirectory)(settings);
  const who: DirectoryCaller = { directory: 'ldap', actor: options.actor ?? 'ldap:sync' };
  const directory = directoryUseCases(context);
  const db = context.store.db;
  const known = (await listDirectoryPeople(db, 'ldap', {}, ALL)).people;
  if (snapshot.people.length === 0 && known.some((p) => p.active)) {
    // NB. A wrong base DN or filter reads as "everyone left": refused rather than deprovisioning everyone.
    throw new LapseError('validation_failed', `the LDAP directory returned nobody, but Lapse has ${known.filter((p) => p.active).length} active LDAP people`, {
      where: 'identity.ldap.users',
      hint: 'Check users.baseDn and users.filter. To deprovision everyone, disable them in the directory.',
    });
  }
  const skipped = [...snapshot.skipped];
  const byDn = new Map(known.map((p) => [p.directoryId ?? '', p]));
  let created = 0;
  let updated = 0;
  let deprovisioned = 0;
  for (const person of snapshot.people) {
    const fields: ScimUserFields = {
      userName: person.name,
      externalId: person.dn,
      displayName: person.displayName,
      email: person.email,
      active: person.active,
    };
    const existing = byDn.get(person.dn);
    try {
      if (!existing) {
        await directory.createPerson(who, fields);
        created += 1;
      } else if (
        existing.name !== fields.userName ||
        existing.displayName !== fields.displayName ||
        existing.email !== fields.email ||
        existing.active !== fields.active
      ) {
        await directory.updatePerson(who, existing.id, () => fields, 'disabled in LDAP');
        updated += 1;
        if (existing.active && !fields.active) deprovisioned += 1;
      }
    } catch (error) {
      if (!(error instanceof LapseError)) throw error;
      skipped.push({ dn: person.dn, reason: error.message });
    }
  }
  const present = new Set(snapshot.people.map((p) => p.dn));
  for (const person of known) {
    if (present.has(person.directoryId ?? '') || !person.active) continue;
    await directory.updatePerson(who, person.id, (current) => ({ ...current, active: false }), 'gone from LDAP');
    deprovisioned += 1;
  }

  const ids = new Map((await listDirectoryPeople(db, 'ldap', {}, ALL)).people.map((p) => [p.directoryId ?? '', p.id]));
  const knownGroups = new Map((await listDirectoryGroups(db, 'ldap', {}, { ...ALL, withMembers: false })).groups.map((g) => [g.directoryId ?? '', g.id]));
  for (const group of snapshot.groups) {
    const fields = {
      displayName: group.name,
      externalId: group.dn,
      members: group.members.map((dn) => ids.get(dn)).filter((id): id is string => id !== undefined),
    };
    try {
      const id = knownGroups.get(group.dn);
      if (id) await directory.updateGroup(who, id, () => fields);
      else await directory.createGroup(who, fields);
    } catch (error) {
      if (!(error instanceof LapseError)) throw error;
      skipped.push({ dn: group.dn, reason: error.message });
    }
  }
  const groupDns = new Set(snapshot.groups.map((g) => g.dn));
  let groupsDeleted = 0;
  for (const [dn, id] of knownGroups) {
    if (groupDns.has(dn)) continue;
    await directory.deleteGroup(who, id);
    groupsDeleted += 1;
  }
  const report: LdapSyncReport = {
    people: snapshot.people.length,
    created,
    updated,
    deprovisioned,
    groups: snapshot.groups.length,
    groupsDeleted,
    skipped: skipped.slice(0, 100),
  };
  await transact(context, (unit) => unit.audit({ action: 'identity.ldap_synced', actor: who.actor, data: { ...report, skippedCount: skipped.length } }));
  return report;
}

/** Job handler: one sync, then the next one `interval` later (a failure is audited and retried then). */
export async function ldapSyncJob(context: EngineContext, job: Job, worker: number): Promise<void> {
  const settings = context.config().identity.ldap;
  if (!settings) {
    await transact(context, (unit) => completeJob(unit.tx, job, worker));
    return;
  }
  try {
    await syncLdap(context, { actor: 'ldap:schedule' });
  } catch (error) {
    const message = error instanceof LapseError ? error.describe() : String(error);
    context.logger.error({ err: error }, 'LDAP sync failed');
    await transact(context, (unit) => unit.audit({ action: 'identity.ldap_sync_failed', actor: 'ldap:schedule', data: { error: message.slice(0, 2000) } }));
  }
  await transact(context, (unit) => rescheduleJob(unit.tx, job, worker, context.config().identity.ldap?.intervalMs ?? settings.intervalMs));
}

/** Books the periodic sync when identity.ldap is configured (at start and after a reload): the first run is due now. */
export async function scheduleLdapSync(context: EngineContext): Promise<void> {
  if (!context.config().identity.ldap) return;
  await transact(context, (unit) => ensureJob(unit.tx, 'ldap_sync', LDAP_JOB_SUBJECT, 0));
}
