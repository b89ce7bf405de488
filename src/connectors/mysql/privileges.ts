import type { RowDataPacket } from 'mysql2';
import { LapseError } from '../../domain/errors.js';
import { ensureRegistry } from './registry.js';
import type { MysqlConnection } from './sessions.js';
import type { MysqlEntitlement, MysqlTarget } from './settings.js';
import { quoteName } from './quote.js';

/**
 * checkTarget: what Lapse's own user needs, from information_schema, so the error names each
 * missing privilege and the GRANT that gives it.
 */
export async function checkPrivileges(connection: MysqlConnection, target: MysqlTarget, entitlements: readonly MysqlEntitlement[]): Promise<void> {
  const [[me]] = await connection.query<RowDataPacket[]>(
    `SELECT CURRENT_USER() AS account, CONCAT('''', SUBSTRING_INDEX(CURRENT_USER(), '@', 1), '''@''', SUBSTRING_INDEX(CURRENT_USER(), '@', -1), '''') AS grantee`,
  );
  // information_schema names the grantee 'user'@'host' (quoted), which is also how GRANT spells it.
  const grantee = String(me!.grantee);
  const account = grantee;
  const key = (db: unknown, table: unknown, privilege: unknown) => JSON.stringify([db, table, privilege]);
  const [globalRows] = await connection.query<RowDataPacket[]>(
    'SELECT PRIVILEGE_TYPE AS p, IS_GRANTABLE AS g FROM information_schema.USER_PRIVILEGES WHERE GRANTEE = ?',
    [grantee],
  );
  const [schemaRows] = await connection.query<RowDataPacket[]>(
    'SELECT TABLE_SCHEMA AS db, PRIVILEGE_TYPE AS p, IS_GRANTABLE AS g FROM information_schema.SCHEMA_PRIVILEGES WHERE GRANTEE = ?',
    [grantee],
  );
  const [tableRows] = await connection.query<RowDataPacket[]>(
    'SELECT TABLE_SCHEMA AS db, TABLE_NAME AS t, PRIVILEGE_TYPE AS p, IS_GRANTABLE AS g FROM information_schema.TABLE_PRIVILEGES WHERE GRANTEE = ?',
    [grantee],
  );
  const [roleRows] = await connection.query<RowDataPacket[]>(
    'SELECT ROLE_NAME AS role, IS_GRANTABLE AS g FROM information_schema.APPLICABLE_ROLES WHERE GRANTEE = ?',
    [String(me!.account)],
  );

  const global = new Set(globalRows.map((r) => String(r.p)));
  const grantable = new Set([
    ...globalRows.filter((r) => r.g === 'YES').map((r) => key('*', '*', r.p)),
    ...schemaRows.filter((r) => r.g === 'YES').map((r) => key(r.db, '*', r.p)),
    ...tableRows.filter((r) => r.g === 'YES').map((r) => key(r.db, r.t, r.p)),
  ]);
  const adminRoles = new Set(roleRows.filter((r) => r.g === 'YES').map((r) => String(r.role)));

  const missing: string[] = [];
  const fixes: string[] = [];
  const need = (ok: boolean, what: string, fix: string) => {
    if (!ok) {
      missing.push(what);
      fixes.push(fix);
    }
  };
  const superuser = global.has('SUPER');
  need(global.has('CREATE USER'), 'CREATE USER', `GRANT CREATE USER ON *.* TO ${account};`);
  need(global.has('PROCESS'), 'PROCESS (to see the connections revoke must kill)', `GRANT PROCESS ON *.* TO ${account};`);
  need(
    global.has('CONNECTION ADMIN') || global.has('CONNECTION_ADMIN') || superuser,
    "CONNECTION ADMIN (to kill other users' connections)",
    `GRANT CONNECTION ADMIN ON *.* TO ${account};`,
  );

  for (const entitlement of entitlements) {
    for (const grant of entitlement.grants) {
      for (const privilege of grant.privileges) {
        const ok =
          grantable.has(key('*', '*', privilege)) ||
          grantable.has(key(grant.database, '*', privilege)) ||
          (grant.table !== '*' && grantable.has(key(grant.database, grant.table, privilege)));
        const on = `${quoteName(grant.database)}.${grant.table === '*' ? '*' : quoteName(grant.table)}`;
        need(ok, `${privilege} ON ${on} WITH GRANT OPTION (entitlement ${entitlement.name})`, `GRANT ${privilege} ON ${on} TO ${account} WITH GRANT OPTION;`);
      }
    }
    if (entitlement.role) {
      const role = quoteName(entitlement.role);
      need(
        adminRoles.has(entitlement.role) || superuser,
        `role ${role} WITH ADMIN OPTION (entitlement ${entitlement.name})`,
        `GRANT ${role} TO ${account} WITH ADMIN OPTION;`,
      );
    }
  }

  // listAccess reads the user and role tables; the registry needs a database of Lapse's own.
  const readable = async (sql: string) =>
    connection.query(sql).then(
      () => true,
      () => false,
    );
  need(
    await readable('SELECT User, Host FROM mysql.user LIMIT 0'),
    'SELECT (User, Host) ON mysql.user',
    `GRANT SELECT (User, Host) ON mysql.user TO ${account};`,
  );
  need(
    await readable('SELECT User, Host, Role, Admin_option FROM mysql.roles_mapping LIMIT 0'),
    'SELECT ON mysql.roles_mapping',
    `GRANT SELECT ON mysql.roles_mapping TO ${account};`,
  );
  const registry = quoteName(target.registryDatabase);
  const registryOk = await ensureRegistry(connection, target.registryDatabase).then(
    () => true,
    () => false,
  );
  need(
    registryOk,
    `CREATE, SELECT, INSERT, UPDATE, DELETE ON ${registry}.* (Lapse's registry of ephemeral users)`,
    `CREATE DATABASE IF NOT EXISTS ${registry}; GRANT CREATE, SELECT, INSERT, UPDATE, DELETE ON ${registry}.* TO ${account};`,
  );

  if (missing.length > 0) {
    throw new LapseError('forbidden', `user ${account} at MySQL target ${target.name} lacks: ${missing.join('; ')}`, {
      where: `targets.${target.name}.settings.user`,
      hint: `as an administrator run: ${[...new Set(fixes)].join(' ')}`,
    });
  }
}
