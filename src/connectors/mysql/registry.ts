import type { RowDataPacket } from 'mysql2';
import type { MysqlConnection } from './sessions.js';
import { quoteName } from './quote.js';

/**
 * MariaDB keeps no comment or attribute on a user, so Lapse records who each ephemeral user is
 * for (target, entitlement, principal, grant) in a small table of its own at the target; listAccess
 * reads it back. Only users that really exist are ever reported: the table is a label, not the truth.
 */
const TABLE = 'lapse_ephemeral_accounts';

export interface RegistryRow {
  readonly account: string;
  readonly target: string;
  readonly entitlement: string;
  readonly principal: string;
  readonly grantId: string;
}

function table(connection: MysqlConnection, database: string): string {
  return `${quoteName(database)}.${quoteName(TABLE)}`;
}

export async function ensureRegistry(connection: MysqlConnection, database: string): Promise<void> {
  await connection.query(
    `CREATE TABLE IF NOT EXISTS ${table(connection, database)} (
       account VARCHAR(80) NOT NULL PRIMARY KEY,
       target VARCHAR(63) NOT NULL,
       entitlement VARCHAR(63) NOT NULL,
       principal VARCHAR(256) NOT NULL,
       grant_id VARCHAR(40) NOT NULL,
       created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
     ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`,
  );
}

export async function recordAccount(connection: MysqlConnection, database: string, row: RegistryRow): Promise<void> {
  await connection.query(
    `INSERT INTO ${table(connection, database)} (account, target, entitlement, principal, grant_id) VALUES (?, ?, ?, ?, ?)
     ON DUPLICATE KEY UPDATE target = VALUES(target), entitlement = VALUES(entitlement), principal = VALUES(principal), grant_id = VALUES(grant_id)`,
    [row.account, row.target, row.entitlement, row.principal, row.grantId],
  );
}

export async function forgetAccount(connection: MysqlConnection, database: string, account: string): Promise<void> {
  await connection.query(`DELETE FROM ${table(connection, database)} WHERE account = ?`, [account]);
}

export async function readRegistry(connection: MysqlConnection, database: string): Promise<RegistryRow[]> {
  const [rows] = await connection.query<RowDataPacket[]>(`SELECT account, target, entitlement, principal, grant_id FROM ${table(connection, database)}`);
  return rows.map((r) => ({ account: r.account, target: r.target, entitlement: r.entitlement, principal: r.principal, grantId: r.grant_id }));
}
