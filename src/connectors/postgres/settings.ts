import type { EntitlementConfig, TargetConfig } from '../../config/types.js';
import {
  checkAccounts,
  checkHost,
  checkInteger,
  checkKnownKeys,
  checkName,
  checkNameList,
  checkPort,
  tlsOptions,
  validateTls,
  type TlsSettings,
} from '../shared/index.js';
import { connectorEntitlements } from '../types.js';

/** PostgreSQL's identifier limit (NAMEDATALEN - 1), in bytes. */
export const MAX_IDENTIFIER_BYTES = 63;

export interface PostgresTarget {
  readonly name: string;
  readonly host: string;
  readonly port: number;
  readonly database: string;
  readonly user: string;
  readonly password: string | undefined;
  readonly tls: TlsSettings | undefined;
  readonly connectTimeoutMs: number;
  readonly maxConnections: number;
  /** principal id → existing role, for elevate mode. */
  readonly accounts: Readonly<Record<string, string>>;
  /** What revoke does with objects an ephemeral role owns. */
  readonly ownedObjects: 'reassign' | 'refuse';
  /** Who receives them under `reassign`; Lapse's own role when absent. */
  readonly reassignOwnedTo: string | undefined;
}

export interface PostgresEntitlement {
  readonly name: string;
  readonly mode: 'ephemeral' | 'elevate';
  readonly roles: readonly string[];
  readonly connectionLimit: number | undefined;
  /** Elevate mode: end the account's sessions on revoke (SET ROLE would otherwise keep the role). */
  readonly terminateSessions: boolean;
}

const TARGET_KEYS = ['host', 'port', 'database', 'user', 'password', 'tls', 'connectTimeout', 'maxConnections', 'accounts', 'ownedObjects', 'reassignOwnedTo'];
const ENTITLEMENT_KEYS = ['mode', 'roles', 'connectionLimit', 'terminateSessions'];

export function validatePostgresSettings(target: TargetConfig): string[] {
  const where = `targets.${target.name}.settings`;
  const s = target.settings;
  const problems = [
    ...checkKnownKeys(s, TARGET_KEYS, where),
    checkHost(s.host, `${where}.host`),
    checkPort(s.port, `${where}.port`),
    checkName(s.database, `${where}.database`, MAX_IDENTIFIER_BYTES, 'database name'),
    checkName(s.user, `${where}.user`, MAX_IDENTIFIER_BYTES, 'role name'),
    s.password === undefined || (typeof s.password === 'string' && s.password.length <= 1024)
      ? undefined
      : `${where}.password: must be a secret reference (\${env:NAME} or \${file:path})`,
    ...validateTls(s.tls, where),
    checkInteger(s.connectTimeout, `${where}.connectTimeout`, 100, 120_000),
    checkInteger(s.maxConnections, `${where}.maxConnections`, 1, 64),
    ...checkAccounts(s.accounts, `${where}.accounts`, MAX_IDENTIFIER_BYTES),
    s.ownedObjects === undefined || s.ownedObjects === 'reassign' || s.ownedObjects === 'refuse'
      ? undefined
      : `${where}.ownedObjects: must be reassign or refuse`,
    s.reassignOwnedTo === undefined ? undefined : checkName(s.reassignOwnedTo, `${where}.reassignOwnedTo`, MAX_IDENTIFIER_BYTES, 'role name'),
  ];
  if (s.reassignOwnedTo !== undefined && s.ownedObjects === 'refuse')
    problems.push(`${where}.reassignOwnedTo: only used with ownedObjects: reassign; remove one of them`);
  for (const entitlement of connectorEntitlements(target)) problems.push(...validateEntitlement(target, entitlement));
  return problems.filter((p): p is string => p !== undefined);
}

function validateEntitlement(target: TargetConfig, entitlement: EntitlementConfig): string[] {
  const where = `targets.${target.name}.entitlements.${entitlement.name}.settings`;
  const s = entitlement.settings;
  const problems = [...checkKnownKeys(s, ENTITLEMENT_KEYS, where), ...checkNameList(s.roles, `${where}.roles`, MAX_IDENTIFIER_BYTES, 32, 'role')];
  if (s.mode !== undefined && s.mode !== 'ephemeral' && s.mode !== 'elevate') problems.push(`${where}.mode: must be ephemeral or elevate`);
  const elevate = s.mode === 'elevate';
  const limit = checkInteger(s.connectionLimit, `${where}.connectionLimit`, 1, 10_000);
  if (limit) problems.push(limit);
  if (elevate && s.connectionLimit !== undefined) problems.push(`${where}.connectionLimit: only applies to ephemeral roles; remove it or use mode: ephemeral`);
  if (s.terminateSessions !== undefined && typeof s.terminateSessions !== 'boolean') problems.push(`${where}.terminateSessions: must be true or false`);
  if (!elevate && s.terminateSessions !== undefined)
    problems.push(`${where}.terminateSessions: only applies to mode: elevate (an ephemeral role's sessions always end)`);
  if (Array.isArray(s.roles) && s.roles.some((role) => typeof role === 'string' && /^lapse_/i.test(role))) {
    problems.push(`${where}.roles: names starting with lapse_ are reserved for ephemeral roles; rename the role`);
  }
  return problems;
}

/** Typed view of settings that passed validatePostgresSettings. */
export function postgresTarget(target: TargetConfig): PostgresTarget {
  const s = target.settings;
  return {
    name: target.name,
    host: s.host as string,
    port: (s.port as number | undefined) ?? 5432,
    database: s.database as string,
    user: s.user as string,
    password: s.password as string | undefined,
    tls: tlsOptions(s.tls),
    connectTimeoutMs: (s.connectTimeout as number | undefined) ?? 10_000,
    maxConnections: (s.maxConnections as number | undefined) ?? 4,
    accounts: (s.accounts as Record<string, string> | undefined) ?? {},
    ownedObjects: (s.ownedObjects as 'reassign' | 'refuse' | undefined) ?? 'reassign',
    reassignOwnedTo: s.reassignOwnedTo as string | undefined,
  };
}

export function postgresEntitlement(entitlement: EntitlementConfig): PostgresEntitlement {
  const s = entitlement.settings;
  return {
    name: entitlement.name,
    mode: s.mode === 'elevate' ? 'elevate' : 'ephemeral',
    roles: s.roles as string[],
    connectionLimit: s.connectionLimit as number | undefined,
    terminateSessions: s.terminateSessions !== false,
  };
}
