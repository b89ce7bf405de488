import type { RowDataPacket } from 'mysql2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../config/index.js';
import { Engine } from '../../engine/index.js';
import { getGrant, getRequest } from '../../store/index.js';
import { offline } from '../../../test/support/environment.js';
import { waitFor } from '../../../test/support/engine.js';
import { openTestStore, type OpenedStore } from '../../../test/support/stores.js';
import { connectorRegistry } from '../types.js';
import { MysqlConnector } from './mysql-connector.js';
import { MariadbSession, mariadb } from './testing/mariadb-client.js';
import { openMysqlScratch, type MysqlScratch } from './testing/scratch-server.js';

/**
 * The whole path on the real MariaDB: an auto-approved request becomes an ephemeral user, alice
 * fetches the password once and reads with the mariadb client, reconciliation removes a role a DBA
 * granted behind Lapse's back, and release drops alice's user and kills her open session.
 */
describe.skipIf(offline())('mysql connector in the engine', () => {
  let scratch: MysqlScratch;
  let opened: OpenedStore;
  let engine: Engine;
  const alice = { id: 'alice@example.com', kind: 'user' as const, groups: ['sre'] };

  beforeAll(async () => {
    scratch = await openMysqlScratch();
    const yaml = `
version: 1
targets:
  orders-db:
    connector: mysql
    reconcile: { remediate: true }
    settings: { host: "${scratch.host}", port: ${scratch.port}, user: ${scratch.lapseUser}, password: "\${env:MYSQL_LAPSE_PASSWORD}", registryDatabase: ${scratch.registryDatabase} }
    entitlements:
      readonly: { settings: { grants: [{ privileges: [SELECT], database: ${scratch.database} }] } }
      reader-role: { settings: { mode: elevate, role: ${scratch.reader} } }
policies:
  - name: sre
    subjects: { groups: [sre] }
    entitlements: ["orders-db/readonly"]
    autoApprove: true
scheduler: { pollInterval: 100ms, connectorTimeout: 10s }
`;
    opened = await openTestStore('pglite');
    const config = parseConfig(yaml, 'mysql-engine.yaml', { MYSQL_LAPSE_PASSWORD: scratch.lapsePassword });
    engine = new Engine({ store: opened.store, config, connectors: connectorRegistry([new MysqlConnector()]) });
    await engine.start();
  });
  afterAll(async () => {
    await engine?.stop();
    await opened?.close();
    await scratch?.close();
  });

  it('provisions, hands out the password once, reconciles standing access and revokes on release', async () => {
    const { request } = await engine.submit({ principal: alice, target: 'orders-db', entitlement: 'readonly', durationMs: 3_600_000, reason: 'engine test' });
    const grantId = (await getRequest(opened.store.db, request.id))!.grantId!;
    await waitFor(
      () => getGrant(opened.store.db, grantId),
      (g) => g?.status === 'active',
    );
    const credentials = await engine.fetchCredentials({ grantId, by: alice });
    const login = { host: credentials.host!, port: Number(credentials.port), user: credentials.username!, password: credentials.password! };
    const read = `SELECT fact FROM \`${scratch.database}\`.facts`;
    expect(await mariadb(login, read)).toMatchObject({ code: 0, stdout: 'the vault is behind the painting' });

    // A DBA, by hand, with no grant in Lapse.
    const outsider = `lapsetest_outsider_${scratch.suffix}`;
    await scratch.createUser(outsider, 'outsider-password');
    await scratch.dba.query(`GRANT \`${scratch.reader}\` TO ?@'%'`, [outsider]);
    const [report] = await engine.reconcile('orders-db', { actor: 'test' });
    expect(report!.error).toBeNull();
    expect(report!.findings).toContainEqual(
      expect.objectContaining({ kind: 'standing', status: 'remediated', account: `${outsider}@%`, entitlement: 'reader-role' }),
    );
    expect(report!.findings.some((f) => f.account.startsWith(credentials.username!))).toBe(false);
    const [held] = await scratch.dba.query<RowDataPacket[]>('SELECT Role FROM mysql.roles_mapping WHERE User = ?', [outsider]);
    expect(held).toEqual([]);

    const session = new MariadbSession(login);
    try {
      expect(await session.query(`SELECT CONCAT('open ', fact) FROM \`${scratch.database}\`.facts;`, 'open the vault')).toBe(true);
      await engine.release({ grantId, by: alice, reason: 'done' });
      await waitFor(
        () => getGrant(opened.store.db, grantId),
        (g) => g?.status === 'revoked',
      );
      expect(await session.query(`SELECT CONCAT('still ', fact) FROM \`${scratch.database}\`.facts;`, 'still the vault', 3_000)).toBe(false);
      expect((await mariadb(login, 'SELECT 1')).stderr).toMatch(/Access denied/);
    } finally {
      session.close();
    }
  });
});
