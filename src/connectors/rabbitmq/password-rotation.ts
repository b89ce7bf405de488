import { createHash, randomBytes } from 'node:crypto';
import type { TargetConfig } from '../../config/types.js';
import { LapseError } from '../../domain/errors.js';
import { checkName } from '../shared/index.js';
import type { PasswordRotation } from '../types.js';
import { closeConnections, ManagementApi, path } from './management-api.js';
import { parseTarget } from './rabbitmq-settings.js';

/** How the management API names the hash it is given (the broker checks logins against it). */
const HASHING_ALGORITHM = 'rabbit_password_hashing_sha256';

/**
 * RabbitMQ's stored form of a password: base64(salt ‖ sha256(salt ‖ password)) with a 4-byte salt,
 * as `rabbit_password_hashing_sha256` computes it. Sent instead of the password, so no access log
 * or tracing of the management API carries anything usable.
 */
export function rabbitPasswordHash(password: string, salt: Buffer = randomBytes(4)): string {
  const digest = createHash('sha256')
    .update(Buffer.concat([salt, Buffer.from(password, 'utf8')]))
    .digest();
  return Buffer.concat([salt, digest]).toString('base64');
}

interface RabbitUser {
  readonly tags: string | readonly string[];
}

/**
 * The vault's RabbitMQ side: `PUT /api/users/{name}` with the new password's hash (keeping the
 * user's tags; its permissions and limits are separate resources PUT leaves alone), a login as the
 * user through the management API to prove it, and closing its connections at check-in.
 * NB. The login check is `GET /api/whoami` as the user: 200, or 401 "Not management user" for a
 * user without a management tag (the broker authenticated the password before it looked at the
 * tags), both mean the password is right; 401 "Login failed" means it is not.
 */
export function rabbitPasswordRotation(): PasswordRotation {
  return {
    validateAccount(target: TargetConfig, account: string, where: string): string[] {
      const problem = checkName(account, where, 255, 'user name');
      if (problem) return [problem];
      if (account === target.settings.username) {
        return [`${where}: ${JSON.stringify(account)} is the user Lapse itself logs in as; lend another user`];
      }
      if (account === '.' || account === '..') return [`${where}: "${account}" cannot be addressed through the management API; rename the user`];
      if (/^lapse_/i.test(account)) return [`${where}: names starting with lapse_ are Lapse's ephemeral users; lend another user`];
      return [];
    },

    async rotatePassword(target, account, password, signal) {
      const api = new ManagementApi(target, parseTarget(target), signal);
      const found = await api.request('GET', path('users', account), undefined, [404]);
      if (found.status === 404) {
        throw new LapseError('connector_failed', `RabbitMQ user ${JSON.stringify(account)} does not exist at target ${target.name}`, {
          where: `targets.${target.name}`,
          hint: 'create the user, or correct checkout.account',
        });
      }
      const { tags } = found.json as RabbitUser;
      await api.request('PUT', path('users', account), {
        password_hash: rabbitPasswordHash(password),
        hashing_algorithm: HASHING_ALGORITHM,
        tags: Array.isArray(tags) ? tags.join(',') : String(tags ?? ''),
      });
    },

    async verifyPassword(target, account, password, signal) {
      const settings = parseTarget(target);
      const api = new ManagementApi(target, { ...settings, username: account, password }, signal);
      const answer = await api.request('GET', '/api/whoami', undefined, [401]);
      if (answer.status !== 401) return true;
      const reason = String((answer.json as { reason?: unknown } | null)?.reason ?? '');
      if (/not management user/i.test(reason)) return true;
      if (/login failed/i.test(reason)) return false;
      throw new LapseError(
        'connector_failed',
        `rabbitmq target ${target.name}: the login check of ${JSON.stringify(account)} answered 401 for an unknown reason`,
        {
          where: `targets.${target.name}.settings.url`,
          hint: 'point settings.url at the RabbitMQ management API itself, not a proxy that authenticates',
        },
      );
    },

    async endSessions(target, account, signal) {
      const api = new ManagementApi(target, parseTarget(target), signal);
      await closeConnections(api, account);
    },

    loginDetails(target): Record<string, string> {
      const settings = parseTarget(target);
      return settings.amqpUrl ? { url: settings.amqpUrl } : {};
    },
  };
}
