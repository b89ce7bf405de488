import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../config/index.js';
import { Engine } from '../../engine/index.js';
import { getGrant, getRequest } from '../../store/index.js';
import { offline } from '../../../test/support/environment.js';
import { waitFor } from '../../../test/support/engine.js';
import { openTestStore, type OpenedStore } from '../../../test/support/stores.js';
import { connectorRegistry } from '../types.js';
import { PostgresConnector } from './postgres-connector.js';
import { PsqlSession, psql } from './testing/psql.js';
import { openPostgresScratch, type PostgresScratch } from './testing/scratch-server.js';

/**
 * The whole path on the real PostgreSQL: an auto-approved request becomes an ephemeral role, alice
 * fetches the password once and reads with psql, reconciliation removes a membership a DBA granted
 * behind Lapse's back, and release ends alice's role and her open session.
 */
describe.skipIf(offline())('postgres connector in the engine', () => {
  let scratch: PostgresScratch;
  let opened: OpenedStore;
  let engine: Engine;
  const connector = new PostgresConnector();
  const alice = { id: 'alice@example.com', kind: 'user' as const, groups: ['sre'] };

  beforeAll(async () => {
    scratch = await openPostgresScratch();
    const yaml = `
version: 1
targets:
  app-db:
    connector: postgres
    reconcile: { remediate: true }
    settings: { host: "${scratch.host}", port: ${scratch.port}, database: ${scratch.database}, user: ${scratch.lapseUser} }
    entitlements:
      readonly: { settings: { roles: [${scratch.reader}] } }
      reader-role: { settings: { mode: elevate, roles: [${scratch.reader}] } }
policies:
  - name: sre
    subjects: { groups: [sre] }
    entitlements: ["app-db/readonly"]
    autoApprove: true
    duration: { default: 1h, max: 4h }
    extension: { maxCount: 1, maxTotal: 4h, requireApproval: false }
scheduler: { pollInterval: 100ms, connectorTimeout: 10s }
`;
    opened = await openTestStore('pglite');
    engine = new Engine({ store: opened.store, config: parseConfig(yaml, 'postgres-engine.yaml', {}), connectors: connectorRegistry([connector]) });
    await engine.start();
  });
  afterAll(async () => {
    await engine?.stop();
    await opened?.close();
    await connector.close();
    await scratch?.close();
  });

  it('provisions, hands out the password once, reconciles standing access and revokes on release', async () => {
    const { request } = await engine.submit({ principal: alice, target: 'app-db', entitlement: 'readonly', durationMs: 3_600_000, reason: 'engine test' });
    const grantId = (await getRequest(opened.store.db, request.id))!.grantId!;
    await waitFor(
      () => getGrant(opened.store.db, grantId),
      (g) => g?.status === 'active',
    );
    const credentials = await engine.fetchCredentials({ grantId, by: alice });
    expect(credentials.username).toBe(`lapse_${grantId.slice(4)}`);
    const login = {
      host: credentials.host!,
      port: Number(credentials.port),
      database: credentials.database!,
      user: credentials.username!,
      password: credentials.password!,
    };
    expect(await psql(login, 'SELECT fact FROM facts')).toMatchObject({ code: 0, stdout: 'the vault is behind the painting' });
    await expect(engine.fetchCredentials({ grantId, by: alice })).rejects.toThrow();

    // A DBA, by hand, with no grant in Lapse.
    const outsider = `lapsetest_outsider_${scratch.suffix}`;
    await scratch.createRole(outsider, 'LOGIN');
    await scratch.dba.query(`GRANT ${scratch.dba.escapeIdentifier(scratch.reader)} TO ${scratch.dba.escapeIdentifier(outsider)}`);
    const [report] = await engine.reconcile('app-db', { actor: 'test' });
    expect(report!.error).toBeNull();
    expect(report!.findings).toContainEqual(expect.objectContaining({ kind: 'standing', status: 'remediated', account: outsider, entitlement: 'reader-role' }));
    expect(report!.findings.some((f) => f.account === credentials.username)).toBe(false);
    const members = await scratch.dba.query('SELECT 1 FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.member WHERE r.rolname = $1', [outsider]);
    expect(members.rowCount).toBe(0);

    const session = new PsqlSession(login);
    try {
      expect(await session.query("SELECT 'open ' || fact FROM facts;", 'open the vault')).toBe(true);
      await engine.release({ grantId, by: alice, reason: 'done' });
      await waitFor(
        () => getGrant(opened.store.db, grantId),
        (g) => g?.status === 'revoked',
      );
      expect(await session.query("SELECT 'still ' || fact FROM facts;", 'still the vault', 3_000)).toBe(false);
      expect((await psql(login, 'SELECT 1')).code).not.toBe(0);
    } finally {
      session.close();
    }
  });

  it("sets the role's VALID UNTIL to the grant's actual end once active, and moves it on extension", async () => {
    const { request } = await engine.submit({ principal: alice, target: 'app-db', entitlement: 'readonly', durationMs: 3_600_000, reason: 'valid until' });
    const grantId = (await getRequest(opened.store.db, request.id))!.grantId!;
    const account = `lapse_${grantId.slice(4)}`;
    const validUntil = async () => {
      const { rows } = await scratch.dba.query<{ rolvaliduntil: Date | null }>('SELECT rolvaliduntil FROM pg_roles WHERE rolname = $1', [account]);
      return rows[0]?.rolvaliduntil?.getTime() ?? null;
    };
    const active = await waitFor(
      () => getGrant(opened.store.db, grantId),
      (g) => g?.status === 'active',
    );
    // Provisioned before the clock started (end + slack); exact once active.
    await waitFor(validUntil, (at) => at === active!.expiresAt!.getTime(), 5_000);

    await engine.extend({ grantId, by: alice, durationMs: 1_800_000, reason: 'longer' });
    const extended = await getGrant(opened.store.db, grantId);
    expect(extended!.expiresAt!.getTime()).toBe(active!.expiresAt!.getTime() + 1_800_000);
    await waitFor(validUntil, (at) => at === extended!.expiresAt!.getTime(), 5_000);

    const told = async () => {
      const events = await opened.store.db.selectFrom('audit_events').select('payload').orderBy('seq').execute();
      return events
        .map((e) => JSON.parse(e.payload) as { action: string; subject?: string })
        .filter((e) => e.subject === grantId && e.action.startsWith('grant.target_'))
        .map((e) => e.action);
    };
    await waitFor(told, (actions) => actions.length === 2);
    expect(await told()).toEqual(['grant.target_expiry_set', 'grant.target_extended']);

    await engine.release({ grantId, by: alice, reason: 'done' });
    await waitFor(
      () => getGrant(opened.store.db, grantId),
      (g) => g?.status === 'revoked',
    );
    expect(await validUntil()).toBeNull();
  });
});
