import type { EntitlementConfig, TargetConfig } from '../../config/types.js';
import { checkAccounts, checkHost, checkInteger, checkKnownKeys, checkName, checkPort, tlsOptions, validateTls, type TlsSettings } from '../shared/index.js';
import { connectorEntitlements } from '../types.js';

/** MariaDB's limits (MySQL's are smaller: 32-character user names, which ephemeral names fit). */
export const MAX_USER_CHARS = 80;
export const MAX_HOST_CHARS = 255;
export const MAX_IDENTIFIER_CHARS = 64;

/**
 * The privileges an entitlement may hand out, as the keywords MySQL/MariaDB spell them. Lapse
 * writes the keyword from this list into GRANT, never the text from lapse.yaml. Deliberately
 * absent: ALL, GRANT OPTION, SUPER, FILE, CREATE USER, SHUTDOWN, RELOAD and other server-wide
 * administration (an entitlement that needs them should be a role).
 */
export const GRANTABLE_PRIVILEGES = [
  'SELECT',
  'INSERT',
  'UPDATE',
  'DELETE',
  'CREATE',
  'DROP',
  'INDEX',
  'ALTER',
  'REFERENCES',
  'CREATE TEMPORARY TABLES',
  'LOCK TABLES',
  'EXECUTE',
  'CREATE VIEW',
  'SHOW VIEW',
  'CREATE ROUTINE',
  'ALTER ROUTINE',
  'EVENT',
  'TRIGGER',
  'DELETE HISTORY',
] as const;

export interface MysqlTarget {
  readonly name: string;
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly password: string | undefined;
  readonly tls: TlsSettings | undefined;
  readonly connectTimeoutMs: number;
  readonly accounts: Readonly<Record<string, string>>;
  /** Database holding Lapse's registry of ephemeral users (who and which entitlement). */
  readonly registryDatabase: string;
}

export interface ObjectGrant {
  readonly privileges: readonly string[];
  readonly database: string;
  readonly table: string;
}

export interface MysqlEntitlement {
  readonly name: string;
  readonly mode: 'ephemeral' | 'elevate';
  readonly host: string;
  /** Privileges on objects (ephemeral mode)… */
  readonly grants: readonly ObjectGrant[];
  /** …or a role (ephemeral: granted and made the default; elevate: granted to the existing user). */
  readonly role: string | undefined;
  readonly maxUserConnections: number | undefined;
}

const TARGET_KEYS = ['host', 'port', 'user', 'password', 'tls', 'connectTimeout', 'accounts', 'registryDatabase'];
const ENTITLEMENT_KEYS = ['mode', 'host', 'grants', 'role', 'maxUserConnections'];

export function validateMysqlSettings(target: TargetConfig): string[] {
  const where = `targets.${target.name}.settings`;
  const s = target.settings;
  const problems = [
    ...checkKnownKeys(s, TARGET_KEYS, where),
    checkHost(s.host, `${where}.host`),
    checkPort(s.port, `${where}.port`),
    checkChars(s.user, `${where}.user`, MAX_USER_CHARS, 'user name'),
    s.password === undefined || (typeof s.password === 'string' && s.password.length <= 1024)
      ? undefined
      : `${where}.password: must be a secret reference (\${env:NAME} or \${file:path})`,
    ...validateTls(s.tls, where),
    checkInteger(s.connectTimeout, `${where}.connectTimeout`, 100, 120_000),
    ...checkAccounts(s.accounts, `${where}.accounts`, MAX_USER_CHARS * 4),
    s.registryDatabase === undefined ? undefined : checkChars(s.registryDatabase, `${where}.registryDatabase`, MAX_IDENTIFIER_CHARS, 'database name'),
  ];
  for (const entitlement of connectorEntitlements(target)) problems.push(...validateEntitlement(target, entitlement));
  return problems.filter((p): p is string => p !== undefined);
}

function validateEntitlement(target: TargetConfig, entitlement: EntitlementConfig): string[] {
  const where = `targets.${target.name}.entitlements.${entitlement.name}.settings`;
  const s = entitlement.settings;
  const problems: (string | undefined)[] = [...checkKnownKeys(s, ENTITLEMENT_KEYS, where)];
  if (s.mode !== undefined && s.mode !== 'ephemeral' && s.mode !== 'elevate') problems.push(`${where}.mode: must be ephemeral or elevate`);
  const elevate = s.mode === 'elevate';
  if (s.host !== undefined) problems.push(checkChars(s.host, `${where}.host`, MAX_HOST_CHARS, 'host pattern'));
  if (s.role !== undefined) problems.push(checkChars(s.role, `${where}.role`, MAX_IDENTIFIER_CHARS * 2, 'role name'));
  if (elevate) {
    if (s.role === undefined) problems.push(`${where}.role: mode: elevate grants a role to the principal's existing user; name it`);
    if (s.grants !== undefined) problems.push(`${where}.grants: mode: elevate grants a role only; put the privileges in a role`);
  } else if ((s.role === undefined) === (s.grants === undefined)) {
    problems.push(`${where}: an ephemeral user gets either grants: [...] or role: <name>; give exactly one`);
  }
  if (s.grants !== undefined) problems.push(...validateGrants(s.grants, `${where}.grants`));
  problems.push(checkInteger(s.maxUserConnections, `${where}.maxUserConnections`, 1, 10_000));
  if (elevate && s.maxUserConnections !== undefined) problems.push(`${where}.maxUserConnections: only applies to ephemeral users`);
  return problems.filter((p): p is string => p !== undefined);
}

function validateGrants(value: unknown, where: string): string[] {
  if (!Array.isArray(value) || value.length === 0 || value.length > 32) return [`${where}: must be a list of 1 to 32 { privileges, database, table } entries`];
  return value
    .flatMap((item, i): (string | undefined)[] => {
      const at = `${where}[${i}]`;
      if (typeof item !== 'object' || item === null || Array.isArray(item))
        return [`${at}: must be { privileges: [SELECT, ...], database: <name>, table: <name or *> }`];
      const { privileges, database, table, ...unknown } = item as Record<string, unknown>;
      const problems: (string | undefined)[] = Object.keys(unknown).map((key) => `${at}.${key}: unknown setting; use privileges, database, table`);
      if (!Array.isArray(privileges) || privileges.length === 0 || privileges.length > GRANTABLE_PRIVILEGES.length) {
        problems.push(`${at}.privileges: must list 1 to ${GRANTABLE_PRIVILEGES.length} privileges`);
      } else {
        for (const [j, privilege] of privileges.entries()) {
          if (canonicalPrivilege(privilege) === undefined)
            problems.push(
              `${at}.privileges[${j}]: ${JSON.stringify(String(privilege).slice(0, 40))} is not a privilege Lapse grants; use one of ${GRANTABLE_PRIVILEGES.join(', ')}`,
            );
        }
      }
      problems.push(checkChars(database, `${at}.database`, MAX_IDENTIFIER_CHARS, 'database name'));
      if (database === '*') problems.push(`${at}.database: name one database; Lapse does not grant on *.*`);
      if (table !== undefined) problems.push(checkChars(table, `${at}.table`, MAX_IDENTIFIER_CHARS, 'table name'));
      return problems;
    })
    .filter((p): p is string => p !== undefined);
}

/** The allow-listed keyword for a privilege written in any case/spacing, or undefined. */
export function canonicalPrivilege(value: unknown): (typeof GRANTABLE_PRIVILEGES)[number] | undefined {
  if (typeof value !== 'string' || value.length > 40) return undefined;
  const normal = value.trim().replace(/\s+/g, ' ').toUpperCase();
  return GRANTABLE_PRIVILEGES.find((p) => p === normal);
}

/** MySQL counts characters (not bytes) in names; otherwise as checkName. */
function checkChars(value: unknown, where: string, max: number, what: string): string | undefined {
  const problem = checkName(value, where, max * 4, what);
  if (problem) return problem;
  return [...(value as string)].length > max ? `${where}: the ${what} is longer than ${max} characters` : undefined;
}

export function mysqlTarget(target: TargetConfig): MysqlTarget {
  const s = target.settings;
  return {
    name: target.name,
    host: s.host as string,
    port: (s.port as number | undefined) ?? 3306,
    user: s.user as string,
    password: s.password as string | undefined,
    tls: tlsOptions(s.tls),
    connectTimeoutMs: (s.connectTimeout as number | undefined) ?? 10_000,
    accounts: (s.accounts as Record<string, string> | undefined) ?? {},
    registryDatabase: (s.registryDatabase as string | undefined) ?? 'lapse',
  };
}

export function mysqlEntitlement(entitlement: EntitlementConfig): MysqlEntitlement {
  const s = entitlement.settings;
  const grants = ((s.grants as Record<string, unknown>[] | undefined) ?? []).map((g) => ({
    privileges: (g.privileges as unknown[]).map((p) => canonicalPrivilege(p)!),
    database: g.database as string,
    table: (g.table as string | undefined) ?? '*',
  }));
  return {
    name: entitlement.name,
    mode: s.mode === 'elevate' ? 'elevate' : 'ephemeral',
    host: (s.host as string | undefined) ?? '%',
    grants,
    role: s.role as string | undefined,
    maxUserConnections: s.maxUserConnections as number | undefined,
  };
}
