import { randomBytes } from 'node:crypto';
import mysql from 'mysql2/promise';
import type { EntitlementConfig, TargetConfig } from '../../../config/types.js';

/**
 * A throw-away corner of the real MariaDB/MySQL server for connector tests and benchmarks: a
 * database with a table, a registry database, a role, and a Lapse user holding exactly the
 * privileges docs/connectors/mysql.md lists (not root), plus cleanup of all of it.
 */
export const MYSQL_URL = process.env.LAPSE_TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test';

export interface MysqlScratch {
  readonly suffix: string;
  readonly host: string;
  readonly port: number;
  readonly database: string;
  readonly registryDatabase: string;
  readonly reader: string;
  readonly lapseUser: string;
  readonly lapsePassword: string;
  /** Root connection (the DBA's view). */
  readonly dba: mysql.Connection;
  target(name: string, entitlements: Record<string, Record<string, unknown>>, settings?: Record<string, unknown>): TargetConfig;
  /** Creates 'name'@'%' (quoted by the server: QUOTE() over a server-side parameter), remembered for cleanup. */
  createUser(name: string, password: string): Promise<void>;
  createRole(name: string): Promise<void>;
  /** Runs `GRANT <privileges> ON <db>.* TO <quoted name>` with the name quoted server-side. */
  grantOn(privileges: string, grantee: string, isRole: boolean, database?: string): Promise<void>;
  close(): Promise<void>;
}

export async function openMysqlScratch(serverUrl: string = MYSQL_URL): Promise<MysqlScratch> {
  const suffix = randomBytes(4).toString('hex');
  const url = new URL(serverUrl);
  const host = url.hostname;
  const port = Number(url.port || 3306);
  const database = `lapsetest_my_${suffix}`;
  const registryDatabase = `lapsetest_reg_${suffix}`;
  const reader = `lapsetest_reader_${suffix}`;
  const lapseUser = `lapsetest_admin_${suffix}`;
  const lapsePassword = randomBytes(12).toString('hex');
  const users: string[] = [];
  const roles: string[] = [];

  let dba: mysql.Connection;
  try {
    dba = await mysql.createConnection({ uri: serverUrl, connectTimeout: 3000 });
  } catch (error) {
    throw new Error(
      `The MySQL connector tests need a MariaDB/MySQL administrator at ${serverUrl} (${(error as Error).message}). ` +
        'Start it, point LAPSE_TEST_MYSQL_URL at one, or run `npm run test:offline`.',
    );
  }
  // NB. The server quotes test names (QUOTE() on a parameter it received unescaped through the
  // binary protocol), so the connector's own quoting is checked against an independent one.
  const quoted = async (name: string, identifier: boolean): Promise<string> => {
    const [rows] = await dba.execute<mysql.RowDataPacket[]>(identifier ? `SELECT CONCAT('\`', REPLACE(?, '\`', '\`\`'), '\`') AS q` : 'SELECT QUOTE(?) AS q', [
      name,
    ]);
    return String(rows[0]!.q);
  };
  const createUser = async (name: string, password: string) => {
    await dba.query(`CREATE USER ${await quoted(name, false)}@'%' IDENTIFIED BY ${await quoted(password, false)}`);
    users.push(name);
  };
  const createRole = async (name: string) => {
    await dba.query(`CREATE ROLE ${await quoted(name, true)}`);
    roles.push(name);
  };
  const grantOn = async (privileges: string, grantee: string, isRole: boolean, db = database) => {
    await dba.query(`GRANT ${privileges} ON ${await quoted(db, true)}.* TO ${isRole ? await quoted(grantee, true) : `${await quoted(grantee, false)}@'%'`}`);
  };

  await dba.query(`CREATE DATABASE \`${database}\``);
  await dba.query(`CREATE DATABASE \`${registryDatabase}\``);
  await dba.query(`CREATE TABLE \`${database}\`.facts (id INT PRIMARY KEY, fact TEXT NOT NULL)`);
  await dba.query(`INSERT INTO \`${database}\`.facts VALUES (1, 'the vault is behind the painting')`);
  await createRole(reader);
  await grantOn('SELECT', reader, true);
  await createUser(lapseUser, lapsePassword);
  // Exactly the setup docs/connectors/mysql.md gives operators.
  for (const sql of [
    `GRANT CREATE USER, PROCESS, CONNECTION ADMIN ON *.* TO '${lapseUser}'@'%'`,
    `GRANT SELECT (User, Host) ON mysql.user TO '${lapseUser}'@'%'`,
    `GRANT SELECT ON mysql.roles_mapping TO '${lapseUser}'@'%'`,
    `GRANT CREATE, SELECT, INSERT, UPDATE, DELETE ON \`${registryDatabase}\`.* TO '${lapseUser}'@'%'`,
    `GRANT SELECT, INSERT ON \`${database}\`.* TO '${lapseUser}'@'%' WITH GRANT OPTION`,
    `GRANT \`${reader}\` TO '${lapseUser}'@'%' WITH ADMIN OPTION`,
  ])
    await dba.query(sql);

  return {
    suffix,
    host,
    port,
    database,
    registryDatabase,
    reader,
    lapseUser,
    lapsePassword,
    dba,
    createUser,
    createRole,
    grantOn,
    target(name, entitlements, settings = {}) {
      const map = new Map<string, EntitlementConfig>(
        Object.entries(entitlements).map(([ename, esettings]) => [ename, { name: ename, target: name, description: '', settings: esettings, labels: {} }]),
      );
      return {
        name,
        connector: 'mysql',
        description: '',
        settings: { host, port, user: lapseUser, password: lapsePassword, registryDatabase, ...settings },
        labels: {},
        entitlements: map,
      };
    },
    async close() {
      const [leftovers] = await dba
        .query<mysql.RowDataPacket[]>(`SELECT account FROM \`${registryDatabase}\`.lapse_ephemeral_accounts`)
        .catch(() => [[]] as unknown as [mysql.RowDataPacket[]]);
      for (const { account } of leftovers) {
        const [hosts] = await dba.query<mysql.RowDataPacket[]>('SELECT Host FROM mysql.user WHERE User = ?', [account]);
        for (const { Host } of hosts) await dba.query('DROP USER IF EXISTS ?@?', [account, Host]);
      }
      for (const name of users) await dba.query(`DROP USER IF EXISTS ${await quoted(name, false)}@'%'`).catch(() => {});
      for (const name of roles) await dba.query(`DROP ROLE IF EXISTS ${await quoted(name, true)}`).catch(() => {});
      await dba.query(`DROP DATABASE IF EXISTS \`${database}\``);
      await dba.query(`DROP DATABASE IF EXISTS \`${registryDatabase}\``);
      await dba.end();
    },
  };
}
