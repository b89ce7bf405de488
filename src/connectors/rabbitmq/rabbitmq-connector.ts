import { randomBytes } from 'node:crypto';
import type { TargetConfig } from '../../config/types.js';
import { LapseError } from '../../domain/errors.js';
import { ephemeralAccountName, parseEphemeralAccountName } from '../redis/index.js';
import { newAccountPassword } from '../shared/index.js';
import {
  connectorEntitlements,
  type AccessHandle,
  type Connector,
  type CurrentAccess,
  type GrantSpec,
  type PasswordRotation,
  type ProvisionResult,
} from '../types.js';
import { rabbitPasswordRotation } from './password-rotation.js';
import { closeConnections, ManagementApi, path } from './management-api.js';
import { parseEntitlement, parseTarget, targetProblems, type Permissions, type RabbitEntitlement, type RabbitTarget } from './rabbitmq-settings.js';

/**
 * RabbitMQ users and vhost permissions through the management HTTP API.
 *
 * - `ephemeral`: a user `lapse_<grant>:<target>:<entitlement>:<principal>` with a fresh random password,
 *   the entitlement's tags and its configure/write/read permissions on one vhost; revoke deletes
 *   the user and closes its connections.
 * - `elevate`: the entitlement's permissions on the vhost for an existing user (the principal id,
 *   or `settings.accounts`); revoke deletes that permission and closes the user's connections to
 *   the vhost. RabbitMQ keeps one permission per user and vhost, so Lapse refuses to elevate a user
 *   who already holds different permissions there: revoke would take those away too.
 */
export class RabbitMqConnector implements Connector {
  readonly type = 'rabbitmq';
  readonly rotation: PasswordRotation = rabbitPasswordRotation();

  validateSettings(target: TargetConfig): string[] {
    return targetProblems(target);
  }

  async checkTarget(target: TargetConfig, signal: AbortSignal): Promise<void> {
    const settings = parseTarget(target);
    const api = new ManagementApi(target, settings, signal);
    const me = (await api.request('GET', '/api/whoami')).json as { name: string; tags: string | string[] };
    const tags = Array.isArray(me.tags) ? me.tags : String(me.tags).split(',');
    if (!tags.includes('administrator')) {
      throw new LapseError(
        'connector_failed',
        `rabbitmq target ${target.name}: Lapse's RabbitMQ user "${settings.username}" lacks the administrator tag, which the management API requires to create users, set permissions and close connections`,
        {
          where: `targets.${target.name}.settings.username`,
          hint: `rabbitmqctl set_user_tags ${settings.username} administrator`,
        },
      );
    }
    for (const entitlement of connectorEntitlements(target)) {
      const { vhost } = parseEntitlement(entitlement);
      const found = await api.request('GET', path('vhosts', vhost), undefined, [404]);
      if (found.status === 404) {
        throw new LapseError('connector_failed', `rabbitmq target ${target.name}: vhost "${vhost}" of entitlement ${entitlement.name} does not exist`, {
          where: `targets.${target.name}.entitlements.${entitlement.name}.settings.vhost`,
          hint: `create it (rabbitmqctl add_vhost '${vhost}') or fix the name`,
        });
      }
    }
    // A user that cannot log in (empty password hash), created and deleted: proves the rights in practice.
    const probe = `lapse_probe_${randomBytes(6).toString('hex')}`;
    await api.request('PUT', path('users', probe), { password_hash: '', tags: '' });
    await api.request('DELETE', path('users', probe), undefined, [404]);
  }

  accessKey(grant: GrantSpec): string {
    const entitlement = parseEntitlement(grant.entitlement);
    if (entitlement.mode === 'ephemeral') return `${grant.target.name}/${ephemeralAccountName(grant)}`;
    // NB. Per user and vhost, not per entitlement: RabbitMQ keeps one permission per pair, so two
    // entitlements on one vhost share it and the last grant to end is the one that removes it.
    return `${grant.target.name}/${entitlement.vhost}/${elevatedAccount(grant.target, grant.principalId)}`;
  }

  async provision(grant: GrantSpec, signal: AbortSignal): Promise<ProvisionResult> {
    const settings = parseTarget(grant.target);
    const entitlement = parseEntitlement(grant.entitlement);
    const api = new ManagementApi(grant.target, settings, signal);
    if (entitlement.mode === 'elevate') return this.elevate(grant, entitlement, api);
    const account = ephemeralAccountName(grant);
    // NB. PUT replaces the user, so a repeated provision sets a fresh password, as it must.
    const password = newAccountPassword();
    await api.request('PUT', path('users', account), { password, tags: entitlement.tags.join(',') });
    await api.request('PUT', path('permissions', entitlement.vhost, account), entitlement.permissions);
    return { handle: { account, vhost: entitlement.vhost }, credentials: credentials(settings, account, password, entitlement.vhost) };
  }

  private async elevate(grant: GrantSpec, entitlement: RabbitEntitlement, api: ManagementApi): Promise<ProvisionResult> {
    const account = elevatedAccount(grant.target, grant.principalId);
    const user = await api.request('GET', path('users', account), undefined, [404]);
    if (user.status === 404) {
      throw new LapseError(
        'connector_failed',
        `rabbitmq target ${grant.target.name}: there is no RabbitMQ user "${account}" to elevate for principal ${grant.principalId}`,
        { where: `targets.${grant.target.name}.settings.accounts`, hint: 'create the user, or map the principal to its user in settings.accounts' },
      );
    }
    const current = await api.request('GET', path('permissions', entitlement.vhost, account), undefined, [404]);
    if (current.status !== 404 && !samePermissions(current.json as Permissions, entitlement.permissions)) {
      throw new LapseError(
        'conflict',
        `rabbitmq target ${grant.target.name}: user "${account}" already has other permissions on vhost "${entitlement.vhost}"; revoking the grant would remove them`,
        {
          where: `targets.${grant.target.name}.entitlements.${grant.entitlement.name}`,
          hint: 'clear the standing permission first, or use an ephemeral entitlement',
        },
      );
    }
    await api.request('PUT', path('permissions', entitlement.vhost, account), entitlement.permissions);
    return { handle: { account, vhost: entitlement.vhost, mode: 'elevate' } };
  }

  async revoke(grant: GrantSpec, handle: AccessHandle | null, signal: AbortSignal): Promise<void> {
    const settings = parseTarget(grant.target);
    const entitlement = parseEntitlement(grant.entitlement);
    const api = new ManagementApi(grant.target, settings, signal);
    const elevated = handle ? handle.mode === 'elevate' : entitlement.mode === 'elevate';
    if (elevated) {
      const account = typeof handle?.account === 'string' ? handle.account : elevatedAccount(grant.target, grant.principalId);
      const vhost = typeof handle?.vhost === 'string' ? handle.vhost : entitlement.vhost;
      await api.request('DELETE', path('permissions', vhost, account), undefined, [404]);
      await closeConnections(api, account, vhost);
      return;
    }
    const account = typeof handle?.account === 'string' ? handle.account : ephemeralAccountName(grant);
    if (parseEphemeralAccountName(account)?.grantId !== grant.grantId) {
      throw new LapseError(
        'connector_failed',
        `rabbitmq target ${grant.target.name}: the handle of grant ${grant.grantId} names an account that is not the grant's`,
        { where: `grants.${grant.grantId}.handle` },
      );
    }
    await deleteUser(api, account);
  }

  async listAccess(target: TargetConfig, signal: AbortSignal): Promise<CurrentAccess[]> {
    const settings = parseTarget(target);
    const api = new ManagementApi(target, settings, signal);
    const users = (await api.request('GET', '/api/users?columns=name')).json as { name: string }[];
    const permissions = (await api.request('GET', '/api/permissions')).json as (Permissions & { user: string; vhost: string })[];
    const found: CurrentAccess[] = [];
    for (const { name } of users) {
      const managed = parseEphemeralAccountName(name);
      // Users of other targets on the same broker are theirs to report.
      if (managed?.target === target.name)
        found.push({ account: name, principalId: managed.principalId, entitlement: managed.entitlement, grantId: managed.grantId });
    }
    const principalOf = new Map(Object.entries(settings.accounts).map(([principal, account]) => [account, principal]));
    const entitlements = connectorEntitlements(target).map((e) => [e.name, parseEntitlement(e)] as const);
    for (const permission of permissions) {
      if (permission.user === settings.username || parseEphemeralAccountName(permission.user)) continue;
      for (const [name, entitlement] of entitlements) {
        if (entitlement.vhost !== permission.vhost || !covers(permission, entitlement.permissions)) continue;
        const principalId = entitlement.mode === 'elevate' ? (principalOf.get(permission.user) ?? permission.user) : permission.user;
        found.push({ account: permission.user, principalId, entitlement: name, grantId: null });
      }
    }
    return found;
  }

  async removeAccess(target: TargetConfig, access: CurrentAccess, signal: AbortSignal): Promise<void> {
    const settings = parseTarget(target);
    const api = new ManagementApi(target, settings, signal);
    if (parseEphemeralAccountName(access.account)) return deleteUser(api, access.account);
    if (access.account === settings.username) {
      throw new LapseError(
        'connector_failed',
        `rabbitmq target ${target.name}: will not remove the permissions of "${access.account}", which Lapse itself logs in as`,
        { where: `targets.${target.name}.settings.username`, hint: 'give Lapse its own RabbitMQ user' },
      );
    }
    const config = target.entitlements.get(access.entitlement);
    if (!config)
      throw new LapseError('not_found', `rabbitmq target ${target.name} has no entitlement ${access.entitlement}`, {
        where: `targets.${target.name}.entitlements`,
      });
    const { vhost } = parseEntitlement(config);
    await api.request('DELETE', path('permissions', vhost, access.account), undefined, [404]);
    await closeConnections(api, access.account, vhost);
  }
}

function elevatedAccount(target: TargetConfig, principalId: string): string {
  const accounts = (target.settings.accounts ?? {}) as Record<string, string>;
  return accounts[principalId] ?? principalId;
}

function credentials(settings: RabbitTarget, username: string, password: string, vhost: string): Record<string, string> {
  const hints: Record<string, string> = { username, password, vhost };
  if (settings.amqpUrl) hints.url = settings.amqpUrl;
  return hints;
}

function samePermissions(a: Permissions, b: Permissions): boolean {
  return a.configure === b.configure && a.write === b.write && a.read === b.read;
}

/** Whether a user's permission reaches everything the entitlement grants: the same pattern, or ".*", for each kind it grants. */
function covers(held: Permissions, granted: Permissions): boolean {
  return (['configure', 'write', 'read'] as const).every((kind) => granted[kind] === '' || held[kind] === granted[kind] || held[kind] === '.*');
}

/**
 * Deletes the user, then closes its connections. RabbitMQ closes a deleted user's connections
 * itself (3.10 does); closing them explicitly keeps that true where it does not.
 */
async function deleteUser(api: ManagementApi, account: string): Promise<void> {
  await api.request('DELETE', path('users', account), undefined, [404]);
  await closeConnections(api, account);
}
