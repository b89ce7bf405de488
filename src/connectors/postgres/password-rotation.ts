import pg from 'pg';
import type { TargetConfig } from '../../config/types.js';
import { checkName, withinDeadline } from '../shared/index.js';
import type { PasswordRotation } from '../types.js';
import { terminateSessions } from './roles.js';
import { scramVerifier } from './scram.js';
import { asLapseError, type PostgresSessions } from './sessions.js';
import { MAX_IDENTIFIER_BYTES, postgresTarget } from './settings.js';
import { LapseError } from '../../domain/errors.js';

/** SQLSTATE invalid_password: the server refused the password (anything else means "cannot tell"). */
const REFUSED_PASSWORD = '28P01';

/**
 * The vault's PostgreSQL side: `ALTER ROLE … PASSWORD` for an existing role (the `postgres`
 * superuser, an application owner), a login as that role to prove the new password works, and
 * the end of its sessions at check-in. docs/connectors/postgres.md says which privileges it needs.
 */
export function postgresPasswordRotation(sessions: PostgresSessions): PasswordRotation {
  return {
    validateAccount(target: TargetConfig, account: string, where: string): string[] {
      const problem = checkName(account, where, MAX_IDENTIFIER_BYTES, 'role name');
      if (problem) return [problem];
      if (account === target.settings.user) {
        return [`${where}: ${JSON.stringify(account)} is the role Lapse itself logs in as; lend another role (rotating Lapse's own password is not built yet)`];
      }
      if (/^lapse_/i.test(account)) return [`${where}: names starting with lapse_ are Lapse's ephemeral roles; lend another role`];
      return [];
    },

    async rotatePassword(target, account, password, signal) {
      const settings = postgresTarget(target);
      await sessions.run(settings, signal, `password rotation of ${account}`, async (client) => {
        const exists = (await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [account])).rowCount! > 0;
        if (!exists) {
          throw new LapseError('connector_failed', `role ${JSON.stringify(account)} does not exist at PostgreSQL target ${target.name}`, {
            where: `targets.${target.name}`,
            hint: 'create the role, or correct checkout.account',
          });
        }
        // NB. The server receives a SCRAM verifier, never the password: nothing usable reaches its
        // statement log, pg_stat_activity or pg_stat_statements.
        await client.query(`ALTER ROLE ${client.escapeIdentifier(account)} PASSWORD ${client.escapeLiteral(scramVerifier(password))}`);
      });
    },

    async verifyPassword(target, account, password, signal) {
      const settings = postgresTarget(target);
      const client = new pg.Client({
        host: settings.host,
        port: settings.port,
        database: settings.database,
        user: account,
        password,
        ssl: settings.tls ? { ...settings.tls } : false,
        connectionTimeoutMillis: settings.connectTimeoutMs,
        application_name: 'lapse-verify',
      });
      client.on('error', () => {});
      const what = `login check of ${account}`;
      try {
        return await withinDeadline(
          signal,
          `${what} at PostgreSQL target ${target.name}`,
          async () => {
            try {
              await client.connect();
              await client.query('SELECT 1');
              return true;
            } catch (error) {
              if ((error as { code?: string }).code === REFUSED_PASSWORD) return false;
              throw asLapseError(error, settings, what);
            }
          },
          () => void client.end().catch(() => {}),
        );
      } finally {
        await client.end().catch(() => {});
      }
    },

    async endSessions(target, account, signal) {
      const settings = postgresTarget(target);
      await sessions.run(settings, signal, `ending the sessions of ${account}`, (client) => terminateSessions(client, account));
    },

    loginDetails(target) {
      const settings = postgresTarget(target);
      return { host: settings.host, port: String(settings.port), database: settings.database };
    },
  };
}
