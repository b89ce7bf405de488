import type { RowDataPacket } from 'mysql2';
import type { MysqlConnection } from './sessions.js';
import type { MysqlEntitlement, ObjectGrant } from './settings.js';
import { quoteName } from './quote.js';

/**
 * The statements behind provision and revoke. Account names and passwords go in as `?` values
 * (mysql2 escapes them as string literals); database, table and role names through
 * `escapeId(name, true)`, which backquotes the whole name (a dot stays part of it); privileges are
 * allow-listed keywords.
 */

export interface Account {
  readonly user: string;
  readonly host: string;
}

/** Creates the user or, on a repeat, gives it a fresh password; then its privileges or role. */
export async function createOrRefreshUser(connection: MysqlConnection, entitlement: MysqlEntitlement, account: Account, password: string): Promise<void> {
  const limit = entitlement.maxUserConnections ?? 0;
  await connection.query('CREATE USER IF NOT EXISTS ?@? IDENTIFIED BY ?', [account.user, account.host, password]);
  await connection.query(`ALTER USER ?@? IDENTIFIED BY ? WITH MAX_USER_CONNECTIONS ${limit}`, [account.user, account.host, password]);
  for (const grant of entitlement.grants)
    await connection.query(`GRANT ${grant.privileges.join(', ')} ON ${objectName(connection, grant)} TO ?@?`, [account.user, account.host]);
  if (entitlement.role) await connection.query(`GRANT ${quoteName(entitlement.role)} TO ?@?`, [account.user, account.host]);
}

function objectName(connection: MysqlConnection, grant: ObjectGrant): string {
  const table = grant.table === '*' ? '*' : quoteName(grant.table);
  return `${quoteName(grant.database)}.${table}`;
}

/**
 * Ends every connection of `user` (any host). Needs PROCESS (to see them) and CONNECTION ADMIN or
 * SUPER (to kill them). Returns how many were killed.
 */
export async function killConnections(connection: MysqlConnection, user: string): Promise<number> {
  const [rows] = await connection.query<({ ID: number } & RowDataPacket)[]>(
    'SELECT ID FROM information_schema.PROCESSLIST WHERE USER = ? AND ID <> CONNECTION_ID()',
    [user],
  );
  let killed = 0;
  for (const { ID } of rows) {
    try {
      await connection.query(`KILL CONNECTION ${Number(ID)}`);
      killed++;
    } catch (error) {
      // It ended on its own between the listing and the kill.
      if ((error as { errno?: number }).errno !== 1094) throw error;
    }
  }
  return killed;
}

/**
 * Revoke of an ephemeral user: drop it on every host first (no new logins), then kill what is
 * still connected. Safe to repeat: a connection left by a crash between the two is killed next time.
 */
export async function dropUser(connection: MysqlConnection, user: string): Promise<void> {
  const [hosts] = await connection.query<({ Host: string } & RowDataPacket)[]>('SELECT Host FROM mysql.user WHERE User = ?', [user]);
  for (const { Host } of hosts) await connection.query('DROP USER IF EXISTS ?@?', [user, Host]);
  await killConnections(connection, user);
}

/** Elevate mode: grants the role to the existing user. */
export async function grantRole(connection: MysqlConnection, role: string, account: Account): Promise<void> {
  await connection.query(`GRANT ${quoteName(role)} TO ?@?`, [account.user, account.host]);
}

/**
 * Elevate mode revoke: takes the role back, then kills the user's connections, since a session
 * that ran SET ROLE may keep using what it activated.
 */
export async function revokeRole(connection: MysqlConnection, role: string, account: Account): Promise<void> {
  try {
    await connection.query(`REVOKE ${quoteName(role)} FROM ?@?`, [account.user, account.host]);
  } catch (error) {
    // 1962: the user does not hold the role (already revoked); 1396/1959: user or role gone.
    if (![1962, 1396, 1959].includes((error as { errno?: number }).errno ?? 0)) throw error;
  }
  await killConnections(connection, account.user);
}

/** `user@host` as CurrentAccess.account; the host is after the last "@" (user names may hold one). */
export function formatAccount(account: Account): string {
  return `${account.user}@${account.host}`;
}

export function parseAccount(text: string): Account {
  const at = text.lastIndexOf('@');
  return at < 0 ? { user: text, host: '%' } : { user: text.slice(0, at), host: text.slice(at + 1) };
}
