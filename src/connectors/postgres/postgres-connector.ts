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
import { postgresPasswordRotation } from './password-rotation.js';
import { listRoleAccess } from './access-list.js';
import { checkPrivileges } from './privileges.js';
import { createOrRefreshRole, dropEphemeralRole, extendRoleValidity, grantMembership, revokeMembership } from './roles.js';
import { PostgresSessions } from './sessions.js';
import { MAX_IDENTIFIER_BYTES, postgresEntitlement, postgresTarget, validatePostgresSettings, type PostgresEntitlement } from './settings.js';

export interface PostgresConnectorOptions {
  /** Where warnings (insecure TLS) go; stderr by default. */
  readonly warn?: Warn;
}

/**
 * PostgreSQL roles. `mode: ephemeral` (default) creates a LOGIN role `lapse_<grant>` with a random
 * password and VALID UNTIL = the grant's notAfter, member of the entitlement's roles; revoke ends
 * its sessions, hands over what it owns and drops it. `mode: elevate` grants the roles to the
 * principal's existing role; revoke takes them back and ends that role's sessions.
 * docs/connectors/postgres.md has the settings and the privileges Lapse's role needs.
 */
export class PostgresConnector implements Connector {
  readonly type = 'postgres';
  readonly rotation: PasswordRotation;
  private readonly sessions: PostgresSessions;

  constructor(options: PostgresConnectorOptions = {}) {
    this.sessions = new PostgresSessions(options.warn ?? defaultWarn);
    this.rotation = postgresPasswordRotation(this.sessions);
  }

  validateSettings(target: TargetConfig): string[] {
    return validatePostgresSettings(target);
  }

  async checkTarget(target: TargetConfig, signal: AbortSignal): Promise<void> {
    const settings = postgresTarget(target);
    const entitlements = connectorEntitlements(target).map(postgresEntitlement);
    await this.sessions.run(settings, signal, 'privilege check', (client) => checkPrivileges(client, settings, entitlements));
  }

  accessKey(grant: GrantSpec): string {
    const entitlement = postgresEntitlement(grant.entitlement);
    if (entitlement.mode === 'ephemeral') return `${grant.target.name}/ephemeral/${grant.grantId}`;
    // NB. Keyed by the roles, not the entitlement: two entitlements granting the same roles to one
    // account give the same access, and ending one must not take it from the other.
    return `${grant.target.name}/elevate/${this.account(grant)}/${JSON.stringify([...entitlement.roles].sort())}`;
  }

  async provision(grant: GrantSpec, signal: AbortSignal): Promise<ProvisionResult> {
    const target = postgresTarget(grant.target);
    const entitlement = postgresEntitlement(grant.entitlement);
    if (entitlement.mode === 'elevate') {
      const account = this.account(grant);
      await this.sessions.run(target, signal, `elevation of ${account}`, (client) => grantMembership(client, target, entitlement, account));
      return { handle: { mode: 'elevate', account } };
    }
    const account = ephemeralAccountName(grant.grantId);
    const password = newAccountPassword();
    const note = { lapse: 1, target: target.name, entitlement: entitlement.name, principal: grant.principalId, grant: grant.grantId } as const;
    await this.sessions.run(target, signal, `provision of ${account}`, (client) =>
      createOrRefreshRole(client, entitlement, { account, password, validUntil: grant.notAfter, note }),
    );
    return {
      handle: { mode: 'ephemeral', account },
      credentials: { username: account, password, host: target.host, port: String(target.port), database: target.database },
    };
  }

  /** An extended grant: the ephemeral role's VALID UNTIL backstop moves to the new expiry (its password stays). */
  async extend(grant: GrantSpec, _handle: AccessHandle | null, signal: AbortSignal): Promise<void> {
    await this.setValidUntil(grant, signal, 'extension');
  }

  /** An active grant: the ephemeral role's VALID UNTIL becomes the grant's actual end (it had a minute's slack). */
  async settleExpiry(grant: GrantSpec, _handle: AccessHandle | null, signal: AbortSignal): Promise<void> {
    await this.setValidUntil(grant, signal, 'expiry');
  }

  private async setValidUntil(grant: GrantSpec, signal: AbortSignal, what: string): Promise<void> {
    const target = postgresTarget(grant.target);
    if (postgresEntitlement(grant.entitlement).mode === 'elevate') return;
    const account = ephemeralAccountName(grant.grantId);
    await this.sessions.run(target, signal, `${what} of ${account}`, (client) => extendRoleValidity(client, account, grant.notAfter));
  }

  async revoke(grant: GrantSpec, _handle: AccessHandle | null, signal: AbortSignal): Promise<void> {
    // NB. The handle is not needed: the account follows from the grant, so a revoke after a crash
    // before provision finished (null handle) removes whatever part of it happened.
    const target = postgresTarget(grant.target);
    const entitlement = postgresEntitlement(grant.entitlement);
    if (entitlement.mode === 'elevate') {
      const account = this.account(grant);
      await this.sessions.run(target, signal, `revoke of ${account}'s elevation`, (client) => revokeMembership(client, target, entitlement, account));
      return;
    }
    const account = ephemeralAccountName(grant.grantId);
    await this.sessions.run(target, signal, `revoke of ${account}`, (client) => dropEphemeralRole(client, target, account));
  }

  async listAccess(target: TargetConfig, signal: AbortSignal): Promise<CurrentAccess[]> {
    const settings = postgresTarget(target);
    const entitlements = connectorEntitlements(target).map(postgresEntitlement);
    return this.sessions.run(settings, signal, 'access listing', (client) => listRoleAccess(client, settings, entitlements));
  }

  async removeAccess(target: TargetConfig, access: CurrentAccess, signal: AbortSignal): Promise<void> {
    const settings = postgresTarget(target);
    if (grantIdOfAccount(access.account) !== null) {
      await this.sessions.run(settings, signal, `removal of ${access.account}`, (client) => dropEphemeralRole(client, settings, access.account));
      return;
    }
    const entitlement = this.entitlement(target, access.entitlement);
    await this.sessions.run(settings, signal, `removal of ${access.account}'s membership`, (client) =>
      revokeMembership(client, settings, entitlement, access.account),
    );
  }

  /** Closes the connection pools (tests, benchmarks, shutdown). */
  async close(): Promise<void> {
    await this.sessions.close();
  }

  /** Elevate mode: the principal's existing role, through settings.accounts when mapped. */
  private account(grant: GrantSpec): string {
    const accounts = (grant.target.settings.accounts as Record<string, string> | undefined) ?? {};
    const account = accounts[grant.principalId] ?? grant.principalId;
    if (account === grant.target.settings.user || grantIdOfAccount(account) !== null) {
      throw new LapseError(
        'validation_failed',
        `principal ${JSON.stringify(grant.principalId.slice(0, 80))} maps to PostgreSQL role ${JSON.stringify(account)}, which is Lapse's own or an ephemeral role; elevate mode never changes those`,
        {
          where: `targets.${grant.target.name}.settings.accounts`,
        },
      );
    }
    if (Buffer.byteLength(account, 'utf8') > MAX_IDENTIFIER_BYTES || account.length === 0 || /\0/.test(account)) {
      throw new LapseError(
        'validation_failed',
        `principal ${JSON.stringify(grant.principalId.slice(0, 80))} has no usable PostgreSQL role name (at most ${MAX_IDENTIFIER_BYTES} bytes)`,
        {
          where: `targets.${grant.target.name}.settings.accounts`,
          hint: 'map the principal to its role in settings.accounts',
        },
      );
    }
    return account;
  }

  private entitlement(target: TargetConfig, name: string): PostgresEntitlement {
    const entitlement = target.entitlements.get(name);
    if (!entitlement)
      throw new LapseError('not_found', `PostgreSQL target ${target.name} has no entitlement ${JSON.stringify(name)}`, {
        where: `targets.${target.name}.entitlements`,
      });
    return postgresEntitlement(entitlement);
  }
}
