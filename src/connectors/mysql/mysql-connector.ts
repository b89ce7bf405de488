import type { TargetConfig } from '../../config/types.js';
import { LapseError } from '../../domain/errors.js';
import { defaultWarn, ephemeralAccountName, grantIdOfAccount, newAccountPassword, type Warn } from '../shared/index.js';
import {
  connectorEntitlements,
  type AccessHandle,
  type Connector,
  type CurrentAccess,
  type GrantSpec,
  type PasswordRotation,
  type ProvisionResult,
} from '../types.js';
import { mysqlPasswordRotation } from './password-rotation.js';
import { listUserAccess } from './access-list.js';
import { createOrRefreshUser, dropUser, formatAccount, grantRole, parseAccount, revokeRole, type Account } from './accounts.js';
import { checkPrivileges } from './privileges.js';
import { ensureRegistry, forgetAccount, recordAccount } from './registry.js';
import { MysqlSessions } from './sessions.js';
import { MAX_USER_CHARS, mysqlEntitlement, mysqlTarget, validateMysqlSettings, type MysqlEntitlement, type MysqlTarget } from './settings.js';
import { quoteName } from './quote.js';

export interface MysqlConnectorOptions {
  /** Where warnings (insecure TLS) go; stderr by default. */
  readonly warn?: Warn;
}

/**
 * MySQL and MariaDB users. `mode: ephemeral` (default) creates `'lapse_<grant>'@'<host>'` with a
 * random password and either privileges on named objects or a role (made its default role);
 * revoke drops it and kills its connections. `mode: elevate` grants a role to the principal's
 * existing user; revoke takes it back and kills that user's connections.
 * docs/connectors/mysql.md has the settings and the privileges Lapse's user needs.
 */
export class MysqlConnector implements Connector {
  readonly type = 'mysql';
  readonly rotation: PasswordRotation;
  private readonly sessions: MysqlSessions;
  /** Targets whose registry table is known to exist (by name and registry database). */
  private readonly registries = new Set<string>();

  constructor(options: MysqlConnectorOptions = {}) {
    this.sessions = new MysqlSessions(options.warn ?? defaultWarn);
    this.rotation = mysqlPasswordRotation(this.sessions);
  }

  validateSettings(target: TargetConfig): string[] {
    return validateMysqlSettings(target);
  }

  async checkTarget(target: TargetConfig, signal: AbortSignal): Promise<void> {
    const settings = mysqlTarget(target);
    const entitlements = connectorEntitlements(target).map(mysqlEntitlement);
    await this.sessions.run(settings, signal, 'privilege check', (connection) => checkPrivileges(connection, settings, entitlements));
  }

  accessKey(grant: GrantSpec): string {
    const entitlement = mysqlEntitlement(grant.entitlement);
    if (entitlement.mode === 'ephemeral') return `${grant.target.name}/ephemeral/${grant.grantId}`;
    // NB. Keyed by the role, not the entitlement: two entitlements granting the same role to one
    // user give the same access, and ending one must not take it from the other.
    return `${grant.target.name}/elevate/${formatAccount(this.existingAccount(grant, entitlement))}/${entitlement.role}`;
  }

  async provision(grant: GrantSpec, signal: AbortSignal): Promise<ProvisionResult> {
    const target = mysqlTarget(grant.target);
    const entitlement = mysqlEntitlement(grant.entitlement);
    if (entitlement.mode === 'elevate') {
      const account = this.existingAccount(grant, entitlement);
      await this.sessions.run(target, signal, `elevation of ${formatAccount(account)}`, (connection) => grantRole(connection, entitlement.role!, account));
      return { handle: { mode: 'elevate', account: formatAccount(account) } };
    }
    const account = { user: ephemeralAccountName(grant.grantId), host: entitlement.host };
    const password = newAccountPassword();
    await this.sessions.run(target, signal, `provision of ${account.user}`, async (connection) => {
      await this.registry(connection, target);
      // NB. Labelled first: a crash between the two leaves a label without a user, which is never reported.
      await recordAccount(connection, target.registryDatabase, {
        account: account.user,
        target: target.name,
        entitlement: entitlement.name,
        principal: grant.principalId,
        grantId: grant.grantId,
      });
      await createOrRefreshUser(connection, entitlement, account, password);
    });
    if (entitlement.role) await this.setDefaultRole(target, entitlement.role, account, password, signal);
    return {
      handle: { mode: 'ephemeral', account: formatAccount(account) },
      credentials: { username: account.user, password, host: target.host, port: String(target.port) },
    };
  }

  async revoke(grant: GrantSpec, _handle: AccessHandle | null, signal: AbortSignal): Promise<void> {
    // NB. The account follows from the grant, so a null handle (crash before provision finished) works too.
    const target = mysqlTarget(grant.target);
    const entitlement = mysqlEntitlement(grant.entitlement);
    if (entitlement.mode === 'elevate') {
      const account = this.existingAccount(grant, entitlement);
      await this.sessions.run(target, signal, `revoke of ${formatAccount(account)}'s role`, (connection) => revokeRole(connection, entitlement.role!, account));
      return;
    }
    await this.dropEphemeral(target, ephemeralAccountName(grant.grantId), signal);
  }

  async listAccess(target: TargetConfig, signal: AbortSignal): Promise<CurrentAccess[]> {
    const settings = mysqlTarget(target);
    const entitlements = connectorEntitlements(target).map(mysqlEntitlement);
    return this.sessions.run(settings, signal, 'access listing', async (connection) => {
      await this.registry(connection, settings);
      return listUserAccess(connection, settings, entitlements);
    });
  }

  async removeAccess(target: TargetConfig, access: CurrentAccess, signal: AbortSignal): Promise<void> {
    const settings = mysqlTarget(target);
    const account = parseAccount(access.account);
    if (grantIdOfAccount(account.user) !== null) return this.dropEphemeral(settings, account.user, signal);
    const entitlement = target.entitlements.get(access.entitlement);
    if (!entitlement)
      throw new LapseError('not_found', `MySQL target ${target.name} has no entitlement ${JSON.stringify(access.entitlement)}`, {
        where: `targets.${target.name}.entitlements`,
      });
    const role = mysqlEntitlement(entitlement).role!;
    await this.sessions.run(settings, signal, `removal of ${access.account}'s role`, (connection) => revokeRole(connection, role, account));
  }

  /** Closes the connection pools (tests, benchmarks, shutdown). */
  async close(): Promise<void> {
    await this.sessions.close();
  }

  private async dropEphemeral(target: MysqlTarget, user: string, signal: AbortSignal): Promise<void> {
    await this.sessions.run(target, signal, `revoke of ${user}`, async (connection) => {
      await dropUser(connection, user);
      await this.registry(connection, target);
      await forgetAccount(connection, target.registryDatabase, user);
    });
  }

  /**
   * MariaDB lets a user choose its own default role without any privilege, while setting it FOR
   * another user takes write access to the mysql database; so Lapse logs in as the new user, and
   * only when the host pattern keeps it out tries FOR with its own (perhaps more privileged) user.
   */
  private async setDefaultRole(target: MysqlTarget, role: string, account: Account, password: string, signal: AbortSignal): Promise<void> {
    const what = `default role of ${account.user}`;
    try {
      await this.sessions.runAs(target, account.user, password, signal, what, (connection) => connection.query(`SET DEFAULT ROLE ${quoteName(role)}`));
      return;
    } catch (asUser) {
      if (signal.aborted) throw asUser;
      try {
        await this.sessions.run(target, signal, what, (connection) =>
          connection.query(`SET DEFAULT ROLE ${quoteName(role)} FOR ?@?`, [account.user, account.host]),
        );
      } catch (asLapse) {
        throw new LapseError(
          'connector_failed',
          `cannot make ${quoteName(role)} the default role of ${account.user} at MySQL target ${target.name}: logging in as that user failed (${(asUser as Error).message}) and so did SET DEFAULT ROLE ... FOR (${(asLapse as Error).message})`,
          {
            where: `targets.${target.name}.entitlements`,
            hint: "let the entitlement's host pattern admit Lapse's own address, or use grants: instead of role:",
          },
          { cause: asLapse },
        );
      }
    }
  }

  private async registry(connection: Parameters<typeof ensureRegistry>[0], target: MysqlTarget): Promise<void> {
    const key = `${target.name}\0${target.registryDatabase}`;
    if (this.registries.has(key)) return;
    await ensureRegistry(connection, target.registryDatabase);
    this.registries.add(key);
  }

  /** Elevate mode: the principal's existing user, through settings.accounts when mapped. */
  private existingAccount(grant: GrantSpec, entitlement: MysqlEntitlement): Account {
    const accounts = (grant.target.settings.accounts as Record<string, string> | undefined) ?? {};
    const user = accounts[grant.principalId] ?? grant.principalId;
    if (user === grant.target.settings.user || grantIdOfAccount(user) !== null) {
      throw new LapseError(
        'validation_failed',
        `principal ${JSON.stringify(grant.principalId.slice(0, 80))} maps to MySQL user ${JSON.stringify(user)}, which is Lapse's own or an ephemeral user; elevate mode never changes those`,
        {
          where: `targets.${grant.target.name}.settings.accounts`,
        },
      );
    }
    // eslint-disable-next-line no-control-regex -- control characters are what is refused.
    if (user.length === 0 || [...user].length > MAX_USER_CHARS || /[\u0000-\u001f]/.test(user)) {
      throw new LapseError(
        'validation_failed',
        `principal ${JSON.stringify(grant.principalId.slice(0, 80))} has no usable MySQL user name (at most ${MAX_USER_CHARS} characters)`,
        {
          where: `targets.${grant.target.name}.settings.accounts`,
          hint: 'map the principal to its user in settings.accounts',
        },
      );
    }
    return { user, host: entitlement.host };
  }
}
