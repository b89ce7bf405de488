import { createHash } from 'node:crypto';
import type { TargetConfig } from '../../config/types.js';
import { LapseError } from '../../domain/errors.js';
import type { PasswordRotation } from '../types.js';
import { parseTarget } from './redis-settings.js';
import { withRedis } from './redis-session.js';

/** ACL user names: no spaces or control characters (the ACL syntax splits on them). */
const USER_NAME = /^[!-~]{1,128}$/;

/**
 * The vault's Redis side: `ACL SETUSER <user> resetpass #<sha256>` for an existing ACL user (the
 * server gets the hash, never the password: MONITOR, the slow log and ACL LOG show no secret),
 * `ACL SAVE` so a restart does not bring the old password back, a login as the user to prove the
 * new one, and `CLIENT KILL USER` at check-in. Lapse's user needs `+acl|save` beyond what
 * docs/connectors/redis.md lists for grants.
 */
export function redisPasswordRotation(): PasswordRotation {
  return {
    validateAccount(target: TargetConfig, account: string, where: string): string[] {
      if (!USER_NAME.test(account)) return [`${where}: a Redis ACL user name is 1 to 128 printable characters without spaces`];
      if (account === ((target.settings.username as string | undefined) ?? 'default')) {
        return [`${where}: ${JSON.stringify(account)} is the user Lapse itself logs in as; lend another user (rotating Lapse's own password is not built yet)`];
      }
      if (/^lapse_/i.test(account)) return [`${where}: names starting with lapse_ are Lapse's ephemeral users; lend another user`];
      return [];
    },

    async rotatePassword(target, account, password, signal) {
      await withRedis(target, signal, { doing: `change the password of ACL user ${account}`, secrets: [password] }, async (redis) => {
        const users = (await redis.call('ACL', 'LIST')) as string[];
        if (!users.some((line) => line.startsWith(`user ${account} `))) {
          throw new LapseError('connector_failed', `ACL user ${JSON.stringify(account)} does not exist at redis target ${target.name}`, {
            where: `targets.${target.name}`,
            hint: 'create the user, or correct checkout.account',
          });
        }
        // NB. resetpass drops every password of the user (and nopass), then # adds the new one's hash.
        await redis.call('ACL', 'SETUSER', account, 'resetpass', `#${createHash('sha256').update(password, 'utf8').digest('hex')}`);
        await redis.call('ACL', 'SAVE').catch((error: unknown) => {
          // Users from redis.conf (no aclfile): nothing to save to; docs/vault.md says what that means.
          if (!/not configured to use an ACL file/i.test(String((error as Error).message))) throw error;
        });
      });
    },

    async verifyPassword(target, account, password, signal) {
      const as = { ...target, settings: { ...target.settings, username: account, password } };
      try {
        await withRedis(as, signal, { doing: `log in as ACL user ${account}`, secrets: [password] }, (redis) => redis.call('PING'));
        return true;
      } catch (error) {
        if (error instanceof LapseError && /WRONGPASS/.test(error.message)) return false;
        throw error;
      }
    },

    async endSessions(target, account, signal) {
      await withRedis(target, signal, { doing: `disconnect the clients of ACL user ${account}` }, async (redis) => {
        await redis.call('CLIENT', 'KILL', 'USER', account).catch((error: unknown) => {
          if (!/No such user/i.test(String((error as Error).message))) throw error;
        });
      });
    },

    loginDetails(target) {
      const settings = parseTarget(target);
      return { host: settings.host, port: String(settings.port) };
    },
  };
}
