import { readFileSync } from 'node:fs';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TargetConfig } from '../../config/types.js';
import { PostgresConnector } from './postgres-connector.js';
import { startPasswordCluster, type PasswordCluster } from './testing/password-cluster.js';

/**
 * The vault's PostgreSQL side against a server that checks passwords (the shared one trusts
 * loopback logins): the new password is the one the server accepts, the old one stops working,
 * open sessions end, and the password itself never reaches the server's log.
 */
const offline = process.env.LAPSE_TEST_OFFLINE === '1';

let cluster: PasswordCluster;
let dba: pg.Client;
const connector = new PostgresConnector();
const rotation = connector.rotation;
const LAPSE_PASSWORD = 'lapse-admin-password-for-rotation-tests';
const FIRST_PASSWORD = 'Initial-Owner-Password-4711';

beforeAll(async () => {
  if (offline) return;
  cluster = await startPasswordCluster();
  dba = new pg.Client({ host: cluster.host, port: cluster.port, user: 'postgres', database: 'postgres' });
  await dba.connect();
  await dba.query(`CREATE ROLE lapse LOGIN CREATEROLE PASSWORD '${LAPSE_PASSWORD}';
    GRANT pg_signal_backend TO lapse;
    CREATE ROLE "app owner" LOGIN PASSWORD '${FIRST_PASSWORD}';`);
  // Every statement goes to the log: the test then reads it for the passwords.
  await dba.query(`ALTER SYSTEM SET log_statement = 'all'`);
  await dba.query('SELECT pg_reload_conf()');
}, 120_000);
afterAll(async () => {
  if (offline) return;
  await connector.close();
  await dba?.end().catch(() => {});
  await cluster?.stop();
});

function target(): TargetConfig {
  return {
    name: 'pg-vault',
    connector: 'postgres',
    description: '',
    settings: { host: cluster.host, port: cluster.port, database: 'postgres', user: 'lapse', password: LAPSE_PASSWORD },
    labels: {},
    entitlements: new Map(),
  };
}

const signal = () => AbortSignal.timeout(10_000);

describe.skipIf(offline)('postgres password rotation (vault)', () => {
  it('verifies a password by logging in: true when accepted, false when refused', async () => {
    expect(await rotation.verifyPassword(target(), 'app owner', FIRST_PASSWORD, signal())).toBe(true);
    expect(await rotation.verifyPassword(target(), 'app owner', 'not-the-password', signal())).toBe(false);
  });

  it('rotates to a password the server accepts; the old one fails; nothing readable reaches the server log', async () => {
    const next = 'Rotated-By-Lapse-0123456789abcdef';
    await rotation.rotatePassword(target(), 'app owner', next, signal());
    expect(await rotation.verifyPassword(target(), 'app owner', next, signal())).toBe(true);
    expect(await rotation.verifyPassword(target(), 'app owner', FIRST_PASSWORD, signal())).toBe(false);
    // Repeating the change (a retry after a crash) is harmless.
    await rotation.rotatePassword(target(), 'app owner', next, signal());
    expect(await rotation.verifyPassword(target(), 'app owner', next, signal())).toBe(true);

    const log = readFileSync(cluster.logFile, 'utf8');
    expect(log).toMatch(/ALTER ROLE "app owner" PASSWORD 'SCRAM-SHA-256\$/);
    expect(log).not.toContain(next);
  });

  it('ends the sessions of the account at check-in', async () => {
    const next = 'Session-Test-Password-abcdefghijk';
    await rotation.rotatePassword(target(), 'app owner', next, signal());
    const open = new pg.Client({ host: cluster.host, port: cluster.port, database: 'postgres', user: 'app owner', password: next });
    open.on('error', () => {});
    await open.connect();
    try {
      await open.query('SELECT 1');
      await rotation.endSessions(target(), 'app owner', signal());
      await expect(open.query('SELECT 1')).rejects.toThrow();
    } finally {
      await open.end().catch(() => {});
    }
  });

  it('says clearly when the role does not exist, without the password', async () => {
    const secret = 'Never-In-An-Error-Message-123456';
    const failure = await rotation.rotatePassword(target(), 'no_such_role', secret, signal()).then(
      () => null,
      (error: Error) => error,
    );
    expect(failure?.message).toMatch(/role "no_such_role" does not exist at PostgreSQL target pg-vault/);
    expect(JSON.stringify(failure)).not.toContain(secret);
  });

  it('refuses to lend Lapse’s own role or an ephemeral one', () => {
    expect(rotation.validateAccount(target(), 'lapse', 'where')).toEqual([expect.stringMatching(/^where: "lapse" is the role Lapse itself logs in as/)]);
    expect(rotation.validateAccount(target(), 'lapse_x', 'where')).toEqual([expect.stringMatching(/ephemeral roles/)]);
    expect(rotation.validateAccount(target(), 'postgres', 'where')).toEqual([]);
    expect(rotation.loginDetails(target(), 'postgres')).toEqual({ host: cluster.host, port: String(cluster.port), database: 'postgres' });
  });
});
