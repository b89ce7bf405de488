import { isIP } from 'node:net';
import type { ConnectionOptions } from 'node:tls';
import { Client } from 'ldapts';
import type { LdapSyncConfig } from '../config/types.js';
import { LapseError } from '../domain/errors.js';
import { PERSON_NAME_PATTERN } from '../domain/principal.js';

/**
 * Reads people and groups from an LDAP / Active Directory server (`identity.ldap`), once, into a
 * snapshot the engine applies (src/engine/ldap-sync.ts). Never writes to the directory. TLS is
 * verified always (LDAPS, or StartTLS before the bind); plain ldap:// is allowed by the config
 * only to this machine.
 */
export interface LdapPerson {
  /** Normalised DN: Lapse's id for the person in the directory. */
  readonly dn: string;
  readonly name: string;
  readonly displayName: string | null;
  readonly email: string | null;
  readonly active: boolean;
}

export interface LdapGroup {
  readonly dn: string;
  readonly name: string;
  /** DNs of the people in it, through nested groups too. */
  readonly members: readonly string[];
}

export interface LdapSnapshot {
  readonly people: readonly LdapPerson[];
  readonly groups: readonly LdapGroup[];
  /** Entries left out, with why (a name Lapse cannot use, a group name clash). */
  readonly skipped: readonly { readonly dn: string; readonly reason: string }[];
}

/** DNs compared as LDAP does for the usual attribute types: case-insensitive, no space around separators. */
export function normaliseDn(dn: string): string {
  return dn
    .split(',')
    .map((rdn) =>
      rdn
        .split('=')
        .map((part) => part.trim())
        .join('='),
    )
    .join(',')
    .toLowerCase();
}

function first(value: unknown): string | null {
  const one = Array.isArray(value) ? value[0] : value;
  if (typeof one === 'string') return one.length > 0 ? one.slice(0, 1024) : null;
  if (Buffer.isBuffer(one)) return one.toString('utf8').slice(0, 1024) || null;
  return null;
}

function all(value: unknown): string[] {
  const list = Array.isArray(value) ? value : value === undefined ? [] : [value];
  return list.map((v) => (Buffer.isBuffer(v) ? v.toString('utf8') : String(v))).filter((v) => v.length > 0 && v.length <= 2048);
}

function unavailable(settings: LdapSyncConfig, error: unknown): LapseError {
  const message = error instanceof Error ? error.message : String(error);
  // NB. Never the bind password: ldapts messages carry codes and DNs only.
  return new LapseError('idp_unavailable', `the LDAP directory at ${settings.url} could not be read: ${message.slice(0, 300)}`, {
    where: 'identity.ldap',
    hint: 'Check url, bindDn and bindPassword, the CA (identity.ldap.tls.ca) and that the server is reachable.',
  });
}

/** One read of the directory: people (and which are disabled), and groups with nested members flattened. */
export async function readLdapDirectory(settings: LdapSyncConfig): Promise<LdapSnapshot> {
  const hostname = new URL(settings.url).hostname;
  const tlsOptions: ConnectionOptions = {
    ...(settings.ca ? { ca: settings.ca } : {}),
    // NB. Always verified: never rejectUnauthorized false, even with a private CA.
    rejectUnauthorized: true,
    // SNI takes host names only; an IP address is still checked against the certificate's IP SANs.
    ...(isIP(hostname) === 0 ? { servername: hostname } : {}),
    minVersion: 'TLSv1.2',
  };
  // NB. ldapts speaks TLS from the first byte whenever it is given tlsOptions, so an ldap:// URL
  // (StartTLS) gets them only for the upgrade; and a copy, as startTLS writes the socket into it.
  const secure = new URL(settings.url).protocol === 'ldaps:';
  const client = new Client({
    url: settings.url,
    timeout: settings.timeoutMs,
    connectTimeout: settings.timeoutMs,
    strictDN: false,
    ...(secure ? { tlsOptions } : {}),
  });
  try {
    if (settings.startTls) await client.startTLS({ ...tlsOptions });
    await client.bind(settings.bindDn, settings.bindPassword);
    const limit = settings.maxEntries + 1;
    const search = async (base: string, filter: string, attributes: string[]) => {
      const { searchEntries } = await client.search(base, { scope: 'sub', filter, attributes, paged: { pageSize: 500 }, sizeLimit: limit });
      if (searchEntries.length > settings.maxEntries) {
        throw new LapseError('validation_failed', `the LDAP search under ${base} found more than ${settings.maxEntries} entries`, {
          where: 'identity.ldap.maxEntries',
          hint: 'Narrow the filter or base DN, or raise maxEntries.',
        });
      }
      return searchEntries;
    };
    const u = settings.users;
    const people = await search(u.baseDn, u.filter, [u.nameAttribute, u.displayNameAttribute, u.emailAttribute]);
    const disabled = new Set(u.disabledFilter ? (await search(u.baseDn, `(&${u.filter}${u.disabledFilter})`, ['1.1'])).map((e) => normaliseDn(e.dn)) : []);
    const skipped: { dn: string; reason: string }[] = [];
    const byDn = new Map<string, LdapPerson>();
    for (const entry of people) {
      const dn = normaliseDn(entry.dn);
      const name = first(entry[u.nameAttribute])?.trim().toLowerCase() ?? '';
      if (!PERSON_NAME_PATTERN.test(name)) {
        skipped.push({ dn, reason: `${u.nameAttribute} "${name.slice(0, 60)}" is not usable as a Lapse user name` });
        continue;
      }
      byDn.set(dn, {
        dn,
        name,
        displayName: first(entry[u.displayNameAttribute])?.slice(0, 256) ?? null,
        email: first(entry[u.emailAttribute])?.slice(0, 320) ?? null,
        active: !disabled.has(dn),
      });
    }
    const groups: LdapGroup[] = [];
    if (settings.groups) {
      const g = settings.groups;
      const entries = await search(g.baseDn, g.filter, [g.nameAttribute, g.memberAttribute]);
      const direct = new Map<string, { name: string; members: string[] }>();
      for (const entry of entries) {
        const name = first(entry[g.nameAttribute]);
        if (!name) continue;
        direct.set(normaliseDn(entry.dn), { name: name.slice(0, 256), members: all(entry[g.memberAttribute]).map(normaliseDn) });
      }
      // Nested groups (a member that is a group): its people count as members too; cycles are cut.
      const flatten = (dn: string, seen: Set<string>): Set<string> => {
        const out = new Set<string>();
        if (seen.has(dn)) return out;
        seen.add(dn);
        for (const member of direct.get(dn)?.members ?? []) {
          if (byDn.has(member)) out.add(member);
          else if (direct.has(member)) for (const m of flatten(member, seen)) out.add(m);
        }
        return out;
      };
      for (const [dn, group] of direct) groups.push({ dn, name: group.name, members: [...flatten(dn, new Set())] });
    }
    return { people: [...byDn.values()], groups, skipped };
  } catch (error) {
    if (error instanceof LapseError) throw error;
    throw unavailable(settings, error);
  } finally {
    await client.unbind().catch(() => undefined);
  }
}
