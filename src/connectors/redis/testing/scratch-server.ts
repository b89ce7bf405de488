import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import type { EntitlementConfig, TargetConfig } from '../../../config/types.js';

/**
 * A throw-away corner of the real Redis for benchmarks (and tests that want one): Lapse's own ACL
 * user with exactly the four permissions docs/connectors/redis.md lists and a key prefix of its
 * own; close() deletes that user (the grants' users are revoked by whoever made them).
 */
export interface RedisScratch {
  readonly prefix: string;
  readonly host: string;
  readonly port: number;
  /** Lapse's ACL user and its password. */
  readonly lapseUser: string;
  readonly password: string;
  /** A connection as the server's `default` user (the operator's view). */
  readonly admin: Redis;
  target(name: string, entitlements: Record<string, Record<string, unknown>>): TargetConfig;
  close(): Promise<void>;
}

export async function openRedisScratch(
  host = process.env.LAPSE_TEST_REDIS_HOST ?? '127.0.0.1',
  port = Number(process.env.LAPSE_TEST_REDIS_PORT ?? 6379),
): Promise<RedisScratch> {
  const suffix = randomBytes(4).toString('hex');
  const prefix = `lapsescratch${suffix}`;
  const lapseUser = `lapse-admin-${suffix}`;
  const password = randomBytes(16).toString('hex');
  const admin = new Redis({ host, port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  admin.on('error', () => undefined);
  try {
    await admin.connect();
  } catch (error) {
    throw new Error(`Redis is not reachable at ${host}:${port} (${(error as Error).message}); set LAPSE_TEST_REDIS_HOST/LAPSE_TEST_REDIS_PORT`);
  }
  await admin.call('ACL', 'SETUSER', lapseUser, 'reset', 'on', `>${password}`, '+acl|list', '+acl|setuser', '+acl|deluser', '+client|kill');
  return {
    prefix,
    host,
    port,
    lapseUser,
    password,
    admin,
    target(name, entitlements) {
      const map = new Map<string, EntitlementConfig>(
        Object.entries(entitlements).map(([e, settings]) => [e, { name: e, target: name, description: '', settings, labels: {} }]),
      );
      return { name, connector: 'redis', description: '', settings: { host, port, username: lapseUser, password }, labels: {}, entitlements: map };
    },
    async close() {
      await admin.call('ACL', 'DELUSER', lapseUser);
      admin.disconnect();
    },
  };
}
