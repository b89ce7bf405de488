import { createHash } from 'node:crypto';
import type { RowDataPacket } from 'mysql2';
import type { TargetConfig } from '../../config/types.js';
import { LapseError } from '../../domain/errors.js';
import { checkName } from '../shared/index.js';
import type { PasswordRotation } from '../types.js';
import { formatAccount, killConnections, parseAccount } from './accounts.js';
import type { MysqlSessions } from './sessions.js';
import { MAX_HOST_CHARS, MAX_USER_CHARS, mysqlTarget } from './settings.js';

/** ER_ACCESS_DENIED_ERROR: the server refused the login (anything else means "cannot tell"). */
const REFUSED_LOGIN = 1045;

/**
 * The mysql_native_password hash of a password (`*` and the upper-case hex of SHA1(SHA1(password))),
 * what `IDENTIFIED WITH mysql_native_password AS` takes. Lapse sends this instead of the password,
 * so the plain password never reaches a general, slow or audit log on the server.
 * NB. A weak hash for human passwords; the vault's are 16 to 128 random characters.
 */
export function nativePasswordHash(password: string): string {
  const once = createHash('sha1').update(password, 'utf8').digest();
  return `*${createHash('sha1').update(once).digest('hex').toUpperCase()}`;
}

/**
 * The vault's MySQL/MariaDB side: `ALTER USER … IDENTIFIED WITH mysql_native_password AS '<hash>'`
 * for an existing account (`user@host`, host `%` when left out), a login as it to prove the new
 * password, and killing its connections at check-in.
 */
export function mysqlPasswordRotation(sessions: MysqlSessions): PasswordRotation {
  return {
    validateAccount(target: TargetConfig, account: string, where: string): string[] {
      const { user, host } = parseAccount(account);
      const problem = checkName(user, where, MAX_USER_CHARS * 4, 'user name') ?? checkName(host, where, MAX_HOST_CHARS * 4, 'host');
      if (problem) return [problem];
      if (user === target.settings.user) {
        return [`${where}: ${JSON.stringify(user)} is the user Lapse itself logs in as; lend another account (rotating Lapse's own password is not built yet)`];
      }
      if (/^lapse_/i.test(user)) return [`${where}: names starting with lapse_ are Lapse's ephemeral users; lend another account`];
      return [];
    },

    async rotatePassword(target, account, password, signal) {
      const settings = mysqlTarget(target);
      const { user, host } = parseAccount(account);
      await sessions.run(settings, signal, `password rotation of ${formatAccount({ user, host })}`, async (connection) => {
        const [rows] = await connection.query<RowDataPacket[]>('SELECT 1 FROM mysql.user WHERE User = ? AND Host = ?', [user, host]);
        if (rows.length === 0) {
          throw new LapseError('connector_failed', `account ${JSON.stringify(formatAccount({ user, host }))} does not exist at MySQL target ${target.name}`, {
            where: `targets.${target.name}`,
            hint: 'create the account, or correct checkout.account (user@host)',
          });
        }
        await connection.query('ALTER USER ?@? IDENTIFIED WITH mysql_native_password AS ?', [user, host, nativePasswordHash(password)]);
      });
    },

    async verifyPassword(target, account, password, signal) {
      const settings = mysqlTarget(target);
      const { user, host } = parseAccount(account);
      try {
        await sessions.runAs(settings, user, password, signal, `login check of ${formatAccount({ user, host })}`, async (connection) => {
          await connection.query('SELECT 1');
        });
        return true;
      } catch (error) {
        if ((error as { cause?: { errno?: number } }).cause?.errno === REFUSED_LOGIN) return false;
        throw error;
      }
    },

    async endSessions(target, account, signal) {
      const settings = mysqlTarget(target);
      const { user } = parseAccount(account);
      await sessions.run(settings, signal, `ending the connections of ${user}`, (connection) => killConnections(connection, user));
    },

    loginDetails(target) {
      const settings = mysqlTarget(target);
      return { host: settings.host, port: String(settings.port) };
    },
  };
}
