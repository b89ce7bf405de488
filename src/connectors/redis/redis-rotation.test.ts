import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisConnector } from './redis-connector.js';
import { openRedisScratch, type RedisScratch } from './testing/scratch-server.js';

/**
 * The vault's Redis side against the real server: the new password is the one it accepts, the old
 * one stops working, clients are disconnected at check-in, and only a hash is sent.
 */
const offline = process.env.LAPSE_TEST_OFFLINE === '1';
const signal = () => AbortSignal.timeout(10_000);

let scratch: RedisScratch;
const rotation = new RedisConnector().rotation;
let owner = '';
const FIRST = 'Initial-Redis-Admin-Password-1';

beforeAll(async () => {
  if (offline) return;
  scratch = await openRedisScratch();
  owner = `vault-owner-${scratch.prefix}`;
  await scratch.admin.call('ACL', 'SETUSER', scratch.lapseUser, '+acl|save');
  await scratch.admin.call('ACL', 'SETUSER', owner, 'reset', 'on', `>${FIRST}`, '+ping', '+get', '~*');
});
afterAll(async () => {
  if (offline) return;
  await scratch?.admin.call('ACL', 'DELUSER', owner);
  await scratch?.close();
});

const target = () => scratch.target('redis-vault', {});
async function session(password: string): Promise<Redis> {
  const client = new Redis({
    host: scratch.host,
    port: scratch.port,
    username: owner,
    password,
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  client.on('error', () => undefined);
  await client.connect();
  return client;
}

describe.skipIf(offline)('redis password rotation (vault)', () => {
  it('verifies by logging in, rotates to a password the server accepts, the old one fails, and only its hash was sent', async () => {
    expect(await rotation.verifyPassword(target(), owner, FIRST, signal())).toBe(true);
    expect(await rotation.verifyPassword(target(), owner, 'not-the-password', signal())).toBe(false);
    const next = 'Rotated-By-Lapse-redis-0123456789';
    await rotation.rotatePassword(target(), owner, next, signal());
    await rotation.rotatePassword(target(), owner, next, signal());
    expect(await rotation.verifyPassword(target(), owner, next, signal())).toBe(true);
    expect(await rotation.verifyPassword(target(), owner, FIRST, signal())).toBe(false);
    const rules = (await scratch.admin.call('ACL', 'GETUSER', owner)) as unknown[];
    expect(JSON.stringify(rules)).not.toContain(next);
    // Its other rules stay: only the password changed.
    expect(JSON.stringify(rules)).toContain('+get');
  });

  it('disconnects the user’s clients at check-in', async () => {
    const next = 'Session-Test-Password-redis-abcdef';
    await rotation.rotatePassword(target(), owner, next, signal());
    const client = await session(next);
    try {
      expect(await client.ping()).toBe('PONG');
      await rotation.endSessions(target(), owner, signal());
      await expect(client.ping()).rejects.toThrow();
    } finally {
      client.disconnect();
    }
  });

  it('never creates a user, says so without the password, and refuses to lend Lapse’s own user', async () => {
    const secret = 'Never-In-An-Error-Message-redis-1';
    const failure = await rotation.rotatePassword(target(), 'no-such-user', secret, signal()).then(
      () => null,
      (error: Error) => error,
    );
    expect(failure?.message).toMatch(/ACL user "no-such-user" does not exist at redis target redis-vault/);
    expect(JSON.stringify(failure)).not.toContain(secret);
    expect(((await scratch.admin.call('ACL', 'USERS')) as string[]).includes('no-such-user')).toBe(false);
    expect(rotation.validateAccount(target(), scratch.lapseUser, 'where')).toEqual([expect.stringMatching(/is the user Lapse itself logs in as/)]);
    expect(rotation.validateAccount(target(), 'has space', 'where')).toEqual([expect.stringMatching(/without spaces/)]);
  });
});
