import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TargetConfig } from '../../config/types.js';
import { newId } from '../../domain/ids.js';
import type { GrantSpec } from '../types.js';
import { PostgresConnector } from './postgres-connector.js';
import { startPasswordCluster, type PasswordCluster } from './testing/password-cluster.js';
import { psql } from './testing/psql.js';

/**
 * What the shared server (which trusts loopback logins) cannot show: the server itself checks the
 * password Lapse hands out, and VALID UNTIL (the backstop) refuses new logins after notAfter while
 * an open session survives it, which is why revoke must end sessions.
 */
const offline = process.env.LAPSE_TEST_OFFLINE === '1';

let cluster: PasswordCluster;
let dba: pg.Client;
const connector = new PostgresConnector();
const LAPSE_PASSWORD = 'lapse-admin-password-for-tests';

beforeAll(async () => {
  if (offline) return;
  cluster = await startPasswordCluster();
  dba = new pg.Client({ host: cluster.host, port: cluster.port, user: 'postgres', database: 'postgres' });
  await dba.connect();
  await dba.query(`CREATE ROLE lapse LOGIN CREATEROLE PASSWORD '${LAPSE_PASSWORD}';
    GRANT pg_signal_backend TO lapse;
    CREATE ROLE reader NOLOGIN;
    CREATE TABLE facts (fact text); INSERT INTO facts VALUES ('the vault is behind the painting');
    GRANT SELECT ON facts TO reader;`);
}, 120_000);
afterAll(async () => {
  if (offline) return;
  await connector.close();
  await dba?.end().catch(() => {});
  await cluster?.stop();
});

function target(password: string): TargetConfig {
  return {
    name: 'pg-password',
    connector: 'postgres',
    description: '',
    settings: { host: cluster.host, port: cluster.port, database: 'postgres', user: 'lapse', password },
    labels: {},
    entitlements: new Map([['readonly', { name: 'readonly', target: 'pg-password', description: '', settings: { roles: ['reader'] }, labels: {} }]]),
  };
}

function grant(notAfter: Date): GrantSpec {
  const t = target(LAPSE_PASSWORD);
  return {
    grantId: newId('grant'),
    principalId: 'alice',
    target: t,
    entitlement: t.entitlements.get('readonly')!,
    durationMs: notAfter.getTime() - Date.now(),
    notAfter,
    parameters: {},
  };
}

describe.skipIf(offline)('postgres connector with password authentication', () => {
  it('logs Lapse in with its configured password and says so when it is wrong', async () => {
    await connector.checkTarget(target(LAPSE_PASSWORD), AbortSignal.timeout(10_000));
    await expect(connector.checkTarget({ ...target('wrong'), name: 'pg-password-wrong' }, AbortSignal.timeout(10_000))).rejects.toMatchObject({
      code: 'connector_failed',
      message: expect.stringMatching(/password authentication failed for user "lapse"/),
      details: { hint: 'check targets.pg-password-wrong.settings.user and password' },
    });
  });

  it('the server accepts exactly the handed-out password; after VALID UNTIL new logins fail while an open session survives until revoke', async () => {
    const notAfter = new Date(Date.now() + 4_000);
    const g = grant(notAfter);
    const provisioned = await connector.provision(g, AbortSignal.timeout(10_000));
    const { username, password } = provisioned.credentials!;
    const login = { host: cluster.host, port: cluster.port, database: 'postgres', user: username!, password: password! };

    expect(await psql(login, 'SELECT fact FROM facts')).toMatchObject({ code: 0, stdout: 'the vault is behind the painting' });
    const wrong = await psql({ ...login, password: `${password}x` }, 'SELECT 1');
    expect(wrong.stderr).toMatch(/password authentication failed/);

    const open = new pg.Client(login);
    open.on('error', () => {});
    await open.connect();
    try {
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, notAfter.getTime() - Date.now() + 1_000)));
      const late = await psql(login, 'SELECT 1');
      expect(late.code).not.toBe(0);
      expect(late.stderr).toMatch(/password authentication failed/);
      // The backstop only stops new logins: this session still reads.
      expect((await open.query('SELECT fact FROM facts')).rows).toHaveLength(1);

      await connector.revoke(g, provisioned.handle, AbortSignal.timeout(10_000));
      await expect(open.query('SELECT fact FROM facts')).rejects.toThrow();
    } finally {
      await open.end().catch(() => {});
    }
  });
});
