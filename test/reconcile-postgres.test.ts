import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config/index.js';
import { connectorRegistry } from '../src/connectors/index.js';
import { PostgresConnector } from '../src/connectors/postgres/postgres-connector.js';
import { psql } from '../src/connectors/postgres/testing/psql.js';
import { openPostgresScratch, type PostgresScratch } from '../src/connectors/postgres/testing/scratch-server.js';
import { Engine } from '../src/engine/index.js';
import { getGrant, getRequest, listFindings } from '../src/store/index.js';
import { offline } from './support/environment.js';
import { waitFor } from './support/engine.js';
import { openTestStore, type OpenedStore } from './support/stores.js';

/**
 * Reconciliation against a real PostgreSQL server: a DBA grants a role behind Lapse's back with
 * plain SQL, and `reconcile` finds the membership and (remediate: true) revokes it, while the
 * membership Lapse granted to alice is left alone. Access is checked with the real psql client.
 */
describe.skipIf(offline())('reconciliation against PostgreSQL', () => {
  let scratch: PostgresScratch;
  let opened: OpenedStore;
  let engine: Engine;
  const connector = new PostgresConnector({ warn: () => {} });
  let aliceRole = '';
  let daveRole = '';

  beforeAll(async () => {
    scratch = await openPostgresScratch();
    aliceRole = `lapsetest_alice_${scratch.suffix}`;
    daveRole = `lapsetest_dave_${scratch.suffix}`;
    await scratch.createRole(aliceRole, 'LOGIN');
    await scratch.createRole(daveRole, 'LOGIN');
    const yaml = `
version: 1
targets:
  pg:
    connector: postgres
    reconcile: { remediate: true }
    settings: { host: "${scratch.host}", port: ${scratch.port}, database: ${scratch.database}, user: ${scratch.lapseUser}, accounts: { alice: ${aliceRole} } }
    entitlements:
      readonly: { settings: { mode: elevate, roles: [${scratch.reader}] } }
      analyst: { settings: { mode: elevate, roles: [${scratch.reader}] } }
policies:
  - name: sre
    subjects: { groups: [sre] }
    entitlements: ["pg/readonly"]
    autoApprove: true
scheduler: { pollInterval: 100ms, connectorTimeout: 10s }
`;
    opened = await openTestStore('pglite');
    engine = new Engine({ store: opened.store, config: parseConfig(yaml, 'reconcile-postgres.yaml', {}), connectors: connectorRegistry([connector]) });
    await engine.start();
  });
  afterAll(async () => {
    await engine?.stop();
    await opened?.close();
    await connector.close();
    await scratch?.close();
  });

  const canRead = async (user: string) => {
    const result = await psql({ host: scratch.host, port: scratch.port, database: scratch.database, user }, 'SELECT fact FROM facts WHERE id = 1');
    return result.code === 0 && result.stdout === 'the vault is behind the painting';
  };
  const isMember = async (user: string) => {
    const { rows } = await scratch.dba.query('SELECT pg_has_role($1, $2, $3) AS member', [user, scratch.reader, 'MEMBER']);
    return rows[0].member as boolean;
  };

  it('finds a role membership granted behind its back and revokes it, keeping the granted one', async () => {
    const { request } = await engine.submit({
      principal: { id: 'alice', kind: 'user', groups: ['sre'] },
      target: 'pg',
      entitlement: 'readonly',
      durationMs: 3_600_000,
      reason: 'reconcile test',
    });
    const grantId = (await getRequest(opened.store.db, request.id))!.grantId!;
    await waitFor(
      () => getGrant(opened.store.db, grantId),
      (g) => g?.status === 'active',
    );
    expect(await canRead(aliceRole)).toBe(true);

    // The DBA, in plain SQL, with no grant in Lapse.
    await scratch.dba.query(`GRANT ${scratch.dba.escapeIdentifier(scratch.reader)} TO ${scratch.dba.escapeIdentifier(daveRole)}`);
    expect(await canRead(daveRole)).toBe(true);

    const [report] = await engine.reconcile('pg', { actor: 'test' });
    // Both entitlements give the same role, so the listing shows each membership under both; alice's
    // grant of one covers the other too (same access key), dave's membership is standing under both.
    expect(report).toMatchObject({ error: null, listed: 4, covered: 2, opened: 2, remediated: 2 });
    expect(report!.findings.map((f) => [f.kind, f.status, f.account, f.entitlement]).sort()).toEqual([
      ['standing', 'remediated', daveRole, 'analyst'],
      ['standing', 'remediated', daveRole, 'readonly'],
    ]);
    expect(await isMember(daveRole)).toBe(false);
    expect(await canRead(daveRole)).toBe(false);
    expect(await isMember(aliceRole)).toBe(true);
    expect(await canRead(aliceRole)).toBe(true);

    // Clean now: nothing new, and alice's grant ends as usual.
    const [again] = await engine.reconcile('pg');
    expect(again).toMatchObject({ listed: 2, covered: 2, opened: 0, findings: [] });
    await engine.release({ grantId, by: { id: 'alice', kind: 'user', groups: ['sre'] }, reason: 'done' });
    await waitFor(
      () => getGrant(opened.store.db, grantId),
      (g) => g?.status === 'revoked',
    );
    expect(await canRead(aliceRole)).toBe(false);
    expect(await listFindings(opened.store.db, { target: 'pg', status: 'open' })).toEqual([]);
  });

  it('reports missing access when the membership Lapse granted is revoked by hand', async () => {
    const alice = { id: 'alice', kind: 'user' as const, groups: ['sre'] };
    const { request } = await engine.submit({ principal: alice, target: 'pg', entitlement: 'readonly', durationMs: 3_600_000, reason: 'reconcile test 2' });
    const grantId = (await getRequest(opened.store.db, request.id))!.grantId!;
    await waitFor(
      () => getGrant(opened.store.db, grantId),
      (g) => g?.status === 'active',
    );
    await scratch.dba.query(`REVOKE ${scratch.dba.escapeIdentifier(scratch.reader)} FROM ${scratch.dba.escapeIdentifier(aliceRole)}`);

    const [report] = await engine.reconcile('pg');
    expect(report!.findings).toEqual([expect.objectContaining({ kind: 'missing', grantId, account: 'alice', status: 'open' })]);
    expect(await canRead(aliceRole)).toBe(false); // recorded, not put back
    await engine.release({ grantId, by: alice, reason: 'done' });
    await waitFor(
      () => getGrant(opened.store.db, grantId),
      (g) => g?.status === 'revoked',
    );
  });
});
