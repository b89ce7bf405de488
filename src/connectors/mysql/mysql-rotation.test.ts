import type { RowDataPacket } from 'mysql2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MysqlConnector } from './mysql-connector.js';
import { nativePasswordHash } from './password-rotation.js';
import { MariadbSession, mariadb } from './testing/mariadb-client.js';
import { openMysqlScratch, type MysqlScratch } from './testing/scratch-server.js';

/**
 * The vault's MySQL/MariaDB side against the real server: the new password is the one it accepts,
 * the old one stops working, connections end at check-in, and only a hash crosses the wire.
 */
const offline = process.env.LAPSE_TEST_OFFLINE === '1';
const signal = () => AbortSignal.timeout(15_000);

let scratch: MysqlScratch;
const connector = new MysqlConnector({ warn: () => {} });
const rotation = connector.rotation;
let owner = '';
const FIRST = 'Initial-Owner-Password-0815';

beforeAll(async () => {
  if (offline) return;
  scratch = await openMysqlScratch();
  owner = `lapsetest_owner_${scratch.suffix}`;
  await scratch.createUser(owner, FIRST);
});
afterAll(async () => {
  if (offline) return;
  await scratch?.close();
});

const target = () => scratch.target('my-vault', {});
const login = (password: string) => mariadb({ host: scratch.host, port: scratch.port, user: owner, password }, 'SELECT 1');

describe.skipIf(offline)('mysql password rotation (vault)', () => {
  it('computes the server’s own mysql_native_password hash', async () => {
    const [rows] = await scratch.dba.query<RowDataPacket[]>('SELECT PASSWORD(?) AS h', ['Some-Password-42']);
    expect(nativePasswordHash('Some-Password-42')).toBe(rows[0]!.h);
  });

  it('verifies by logging in, rotates to a password the server accepts, and the old one fails', async () => {
    const account = `${owner}@%`;
    expect(await rotation.verifyPassword(target(), account, FIRST, signal())).toBe(true);
    expect(await rotation.verifyPassword(target(), owner, 'not-the-password', signal())).toBe(false);
    const next = 'Rotated-By-Lapse-abcdefghijklmnop';
    await rotation.rotatePassword(target(), owner, next, signal());
    await rotation.rotatePassword(target(), owner, next, signal());
    expect(await rotation.verifyPassword(target(), account, next, signal())).toBe(true);
    expect((await login(next)).code).toBe(0);
    expect((await login(FIRST)).stderr).toMatch(/Access denied/);
  });

  it('ends the account’s connections at check-in', async () => {
    const next = 'Session-Test-Password-0123456789';
    await rotation.rotatePassword(target(), owner, next, signal());
    const session = new MariadbSession({ host: scratch.host, port: scratch.port, user: owner, password: next });
    try {
      expect(await session.query('SELECT 41+1;', '42')).toBe(true);
      await rotation.endSessions(target(), owner, signal());
      expect(await session.query('SELECT 42+1;', '43', 3_000)).toBe(false);
    } finally {
      session.close();
    }
  });

  it('says clearly when the account does not exist (no password), and refuses to lend Lapse’s own user', async () => {
    const secret = 'Never-In-An-Error-Message-98765';
    const failure = await rotation.rotatePassword(target(), 'nobody_here@%', secret, signal()).then(
      () => null,
      (error: Error) => error,
    );
    expect(failure?.message).toMatch(/account "nobody_here@%" does not exist at MySQL target my-vault/);
    expect(JSON.stringify(failure)).not.toContain(secret);
    expect(rotation.validateAccount(target(), scratch.lapseUser, 'where')).toEqual([expect.stringMatching(/is the user Lapse itself logs in as/)]);
    expect(rotation.validateAccount(target(), 'root@localhost', 'where')).toEqual([]);
  });
});
