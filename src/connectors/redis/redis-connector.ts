import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { TargetConfig } from '../../config/types.js';
import { LapseError } from '../../domain/errors.js';
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
import { redisPasswordRotation } from './password-rotation.js';
import { aclRules, type AclScope } from './acl-rules.js';
import { ephemeralAccountName, parseEphemeralAccountName } from './ephemeral-account.js';
import { parseAclUser, scopeCoveredBy } from './acl-list.js';
import { entitlementProblems, parseEntitlement, parseTarget, targetProblems } from './redis-settings.js';
import { isNoPermission, withRedis } from './redis-session.js';

/**
 * Redis ACL users. Each grant gets an ephemeral user `lapse_<grant>:<target>:<entitlement>:<principal>`
 * with a fresh random password and exactly the entitlement's key patterns, channel patterns and
 * command rules; revoke disconnects its clients and deletes it. Only the ephemeral mode exists:
 * Redis has no roles, so "adding an existing user to a role" has no reversible meaning (see
 * docs/connectors/redis.md).
 */
export class RedisConnector implements Connector {
  readonly type = 'redis';
  readonly rotation: PasswordRotation = redisPasswordRotation();

  validateSettings(target: TargetConfig): string[] {
    return [...targetProblems(target), ...connectorEntitlements(target).flatMap((e) => entitlementProblems(target, e))];
  }

  async checkTarget(target: TargetConfig, signal: AbortSignal): Promise<void> {
    const scopes = connectorEntitlements(target).map((e) => parseEntitlement(target, e));
    const { username } = parseTarget(target);
    await withRedis(target, signal, { doing: 'check the privileges Lapse needs' }, async (redis) => {
      // INFO is an @dangerous command Lapse's user need not have: without it the version is not checked.
      const info = await redis.info('server').catch((error: unknown) => (isNoPermission(error) ? '' : Promise.reject(error)));
      const version = /redis_version:(\d+)/.exec(String(info))?.[1];
      if (version !== undefined && Number(version) < 7 && scopes.some((s) => s.readKeys.length + s.writeKeys.length > 0)) {
        throw new LapseError(
          'connector_failed',
          `redis target ${target.name} runs Redis ${version}, which has no read-only/write-only key patterns (readKeys, writeKeys)`,
          { where: `targets.${target.name}`, hint: 'upgrade to Redis 7 or use keys' },
        );
      }
      const probe = `lapse_probe_${randomBytes(6).toString('hex')}`;
      await privileged(target, username, 'acl|list', () => redis.call('ACL', 'LIST'));
      await privileged(target, username, 'acl|setuser', () => redis.call('ACL', 'SETUSER', probe, 'reset', 'off'));
      try {
        await privileged(target, username, 'client|kill', () => redis.call('CLIENT', 'KILL', 'USER', probe));
      } finally {
        await privileged(
          target,
          username,
          'acl|deluser',
          () => redis.call('ACL', 'DELUSER', probe),
          ` (a disabled user "${probe}" with no permissions was left behind; delete it by hand)`,
        );
      }
    });
  }

  accessKey(grant: GrantSpec): string {
    return `${grant.target.name}/${ephemeralAccountName(grant)}`;
  }

  async provision(grant: GrantSpec, signal: AbortSignal): Promise<ProvisionResult> {
    const scope = parseEntitlement(grant.target, grant.entitlement);
    const settings = parseTarget(grant.target);
    const account = ephemeralAccountName(grant);
    // NB. A fresh password every time: a repeated provision (after a crash) may have lost the first.
    const password = newAccountPassword();
    await withRedis(grant.target, signal, { doing: `create ACL user ${account}`, secrets: [password] }, (redis) => setUser(redis, account, scope, password));
    const hints: Record<string, string> = { username: account, password, host: settings.host, port: String(settings.port) };
    if (settings.tls) hints.tls = 'true';
    return { handle: { account }, credentials: hints };
  }

  async revoke(grant: GrantSpec, handle: AccessHandle | null, signal: AbortSignal): Promise<void> {
    const account = typeof handle?.account === 'string' ? handle.account : ephemeralAccountName(grant);
    if (parseEphemeralAccountName(account)?.grantId !== grant.grantId) {
      throw new LapseError(
        'connector_failed',
        `redis target ${grant.target.name}: the handle of grant ${grant.grantId} names an account that is not the grant's`,
        { where: `grants.${grant.grantId}.handle` },
      );
    }
    await withRedis(grant.target, signal, { doing: `delete ACL user ${account}` }, (redis) => endUser(redis, account));
  }

  async listAccess(target: TargetConfig, signal: AbortSignal): Promise<CurrentAccess[]> {
    const { username } = parseTarget(target);
    const scopes = connectorEntitlements(target).map((e) => [e.name, parseEntitlement(target, e)] as const);
    const lines = await withRedis(target, signal, { doing: 'list ACL users' }, async (redis) => (await redis.call('ACL', 'LIST')) as string[]);
    const found: CurrentAccess[] = [];
    for (const user of lines.map(parseAclUser)) {
      if (!user) continue;
      const managed = parseEphemeralAccountName(user.name);
      if (managed) {
        // Another target on the same server (or another Lapse) owns it: not this target's to report.
        if (managed.target !== target.name) continue;
        found.push({ account: user.name, principalId: managed.principalId, entitlement: managed.entitlement, grantId: managed.grantId });
        continue;
      }
      // Standing access: an enabled user someone else made that reaches what an entitlement guards.
      if (user.name === username || !user.enabled) continue;
      for (const [entitlement, scope] of scopes) {
        if (scopeCoveredBy(scope, user)) found.push({ account: user.name, principalId: user.name, entitlement, grantId: null });
      }
    }
    return found;
  }

  async removeAccess(target: TargetConfig, access: CurrentAccess, signal: AbortSignal): Promise<void> {
    const { username } = parseTarget(target);
    if (access.account === username || access.account === 'default') {
      throw new LapseError(
        'connector_failed',
        `redis target ${target.name}: will not delete the user "${access.account}"${access.account === username ? ', which Lapse itself logs in as' : ', which Redis cannot delete'}`,
        {
          where: `targets.${target.name}`,
          hint:
            access.account === 'default'
              ? 'restrict it yourself (e.g. ACL SETUSER default off, or give it a password and narrower rules)'
              : 'give Lapse its own Redis user',
        },
      );
    }
    await withRedis(target, signal, { doing: `delete ACL user ${access.account}` }, (redis) => endUser(redis, access.account));
  }
}

function setUser(redis: Redis, account: string, scope: AclScope, password: string): Promise<unknown> {
  // Each rule is its own argument: Redis never re-splits them, so no rule can carry another.
  return redis.call('ACL', 'SETUSER', account, ...aclRules(scope, password));
}

/**
 * Disconnects the user's clients and deletes it, in one round trip. Deleting alone would also drop
 * its clients (Redis does so for a deleted user); CLIENT KILL first keeps that true on servers
 * that behave otherwise. "No such user" means a previous revoke already finished.
 */
async function endUser(redis: Redis, account: string): Promise<void> {
  const results = (await redis.pipeline().call('CLIENT', 'KILL', 'USER', account).call('ACL', 'DELUSER', account).exec()) ?? [];
  for (const [error] of results) {
    if (error && !/No such user/i.test(error.message)) throw error;
  }
}

async function privileged(target: TargetConfig, username: string, command: string, run: () => Promise<unknown>, extra = ''): Promise<void> {
  try {
    await run();
  } catch (error) {
    if (!isNoPermission(error)) throw error;
    throw new LapseError(
      'connector_failed',
      `redis target ${target.name}: Lapse's Redis user "${username}" may not run ${command.toUpperCase().replace('|', ' ')} (permission +${command} is missing)${extra}`,
      {
        where: `targets.${target.name}.settings.username`,
        hint: `grant it: ACL SETUSER ${username} +acl|list +acl|setuser +acl|deluser +client|kill`,
      },
    );
  }
}
