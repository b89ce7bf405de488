import { createServer, type AddressInfo } from 'node:net';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TargetConfig } from '../../config/types.js';
import { newId } from '../../domain/ids.js';
import { connectorConformance } from '../testing/conformance.js';
import type { GrantSpec, ProvisionResult } from '../types.js';
import { ephemeralAccountName } from '../shared/index.js';
import { PostgresConnector } from './postgres-connector.js';
import { scramAccepts } from './scram.js';
import { PsqlSession, psql } from './testing/psql.js';
import { openPostgresScratch, type PostgresScratch } from './testing/scratch-server.js';

const offline = process.env.LAPSE_TEST_OFFLINE === '1';
const long = () => AbortSignal.timeout(30_000);

let scratch: PostgresScratch;
const warnings: string[] = [];
const connector = new PostgresConnector({ warn: (message) => warnings.push(message) });
/** Existing LOGIN roles standing in for the principals' own accounts (elevate mode). */
const people: string[] = [];

beforeAll(async () => {
  if (offline) return;
  scratch = await openPostgresScratch();
  for (let i = 0; i < 14; i++) {
    people.push(`lapsetest_person${i}_${scratch.suffix}`);
    await scratch.createRole(people[i]!, 'LOGIN');
  }
});
afterAll(async () => {
  if (offline) return;
  try {
    await connector.close();
  } finally {
    await scratch?.close();
  }
});

function target(kind: 'ephemeral' | 'elevate', settings: Record<string, unknown> = {}, entitlement: Record<string, unknown> = {}): TargetConfig {
  return scratch.target(`pg-${kind}-${scratch.suffix}`, { readonly: { mode: kind, roles: [scratch.reader], ...entitlement } }, settings);
}

function grantOn(t: TargetConfig, principalId: string, overrides: Partial<GrantSpec> = {}): GrantSpec {
  return {
    grantId: newId('grant'),
    principalId,
    target: t,
    entitlement: t.entitlements.get('readonly')!,
    durationMs: 3_600_000,
    notAfter: new Date(Date.now() + 3_600_000),
    parameters: {},
    ...overrides,
  };
}

const login = (provisioned: ProvisionResult) => ({
  host: scratch.host,
  port: scratch.port,
  database: scratch.database,
  user: provisioned.credentials!.username!,
  password: provisioned.credentials!.password!,
});

/** Can the ephemeral role log in with psql and read the table its role grants? */
async function ephemeralCanRead(provisioned: ProvisionResult): Promise<boolean> {
  const result = await psql(login(provisioned), 'SELECT fact FROM facts WHERE id = 1');
  return result.code === 0 && result.stdout === 'the vault is behind the painting';
}

/** Can the existing role read the table (through a membership Lapse granted)? */
async function personCanRead(person: string): Promise<boolean> {
  const result = await psql({ host: scratch.host, port: scratch.port, database: scratch.database, user: person }, 'SELECT fact FROM facts WHERE id = 1');
  return result.code === 0 && result.stdout === 'the vault is behind the painting';
}

describe.skipIf(offline)('postgres connector', () => {
  let next = 0;
  connectorConformance({
    name: 'postgres (ephemeral role)',
    connector: () => connector,
    grant: (overrides) => grantOn(target('ephemeral'), `user-${next++}@example.com`, overrides),
    hasAccess: (_grant, provisioned) => ephemeralCanRead(provisioned),
  });

  let person = 0;
  connectorConformance({
    name: 'postgres (elevate existing role)',
    connector: () => connector,
    grant: (overrides) => grantOn(target('elevate'), people[person++ % 10]!, overrides),
    hasAccess: (grant) => personCanRead(grant.principalId),
    createUnmanaged: async (grant) => {
      const outsider = people[10]!;
      await scratch.dba.query(`GRANT ${scratch.dba.escapeIdentifier(scratch.reader)} TO ${scratch.dba.escapeIdentifier(outsider)}`);
      expect(grant.entitlement.name).toBe('readonly');
      return outsider;
    },
  });

  describe('ephemeral roles', () => {
    it('sets VALID UNTIL to notAfter, the connection limit, a note for listAccess, and a password the server accepts', async () => {
      const t = target('ephemeral', {}, { connectionLimit: 3 });
      const notAfter = new Date(Math.floor(Date.now() / 1000) * 1000 + 600_000);
      const grant = grantOn(t, 'alice', { notAfter });
      const provisioned = await connector.provision(grant, long());
      try {
        const { username, password } = provisioned.credentials!;
        expect(password!.length).toBeGreaterThanOrEqual(32);
        expect(password).toMatch(/^[A-Za-z0-9_-]+$/);
        expect(JSON.stringify(provisioned.handle)).not.toContain(password);
        const { rows } = await scratch.dba.query(
          `SELECT rolvaliduntil, rolconnlimit, rolcanlogin, rolsuper, rolcreaterole, rolpassword, shobj_description(oid, 'pg_authid') AS note FROM pg_authid WHERE rolname = $1`,
          [username],
        );
        expect(rows[0].rolvaliduntil.getTime()).toBe(notAfter.getTime());
        expect(rows[0]).toMatchObject({ rolconnlimit: 3, rolcanlogin: true, rolsuper: false, rolcreaterole: false });
        expect(JSON.parse(rows[0].note)).toEqual({ lapse: 1, target: t.name, entitlement: 'readonly', principal: 'alice', grant: grant.grantId });
        // NB. The server on this machine trusts loopback logins, so psql succeeding proves nothing
        // about the password; the stored SCRAM verifier shows the server would accept exactly it.
        expect(rows[0].rolpassword).toMatch(/^SCRAM-SHA-256\$4096:/);
        expect(scramAccepts(rows[0].rolpassword, password!)).toBe(true);
        expect(scramAccepts(rows[0].rolpassword, `${password}x`)).toBe(false);
      } finally {
        await connector.revoke(grant, provisioned.handle, long());
      }
    });

    it('moves VALID UNTIL when the grant is extended, keeping the password', async () => {
      const t = target('ephemeral');
      const notAfter = new Date(Math.floor(Date.now() / 1000) * 1000 + 600_000);
      const grant = grantOn(t, 'alice', { notAfter });
      const provisioned = await connector.provision(grant, long());
      try {
        const later = new Date(notAfter.getTime() + 3_600_000);
        await connector.extend({ ...grant, notAfter: later }, provisioned.handle, long());
        const { rows } = await scratch.dba.query('SELECT rolvaliduntil, rolpassword FROM pg_authid WHERE rolname = $1', [provisioned.credentials!.username]);
        expect(rows[0].rolvaliduntil.getTime()).toBe(later.getTime());
        expect(scramAccepts(rows[0].rolpassword, provisioned.credentials!.password!)).toBe(true);
      } finally {
        await connector.revoke(grant, provisioned.handle, long());
      }
      // After the revoke there is nothing to extend, and that is not an error.
      await connector.extend(grant, provisioned.handle, long());
    });

    it('issues a fresh password on a repeated provision and the old one stops working', async () => {
      const grant = grantOn(target('ephemeral'), 'alice');
      const first = await connector.provision(grant, long());
      const second = await connector.provision(grant, AbortSignal.timeout(30_000));
      try {
        expect(second.credentials!.password).not.toBe(first.credentials!.password);
        const { rows } = await scratch.dba.query('SELECT rolpassword FROM pg_authid WHERE rolname = $1', [second.credentials!.username]);
        expect(scramAccepts(rows[0].rolpassword, second.credentials!.password!)).toBe(true);
        expect(scramAccepts(rows[0].rolpassword, first.credentials!.password!)).toBe(false);
      } finally {
        await connector.revoke(grant, second.handle, long());
      }
    });

    it('revoke ends an open psql session and an open pg session, and new logins fail', async () => {
      const grant = grantOn(target('ephemeral'), 'alice');
      const provisioned = await connector.provision(grant, long());
      const session = new PsqlSession(login(provisioned));
      const client = new pg.Client({ ...login(provisioned) });
      let lost: Error | undefined;
      client.on('error', (error) => (lost = error));
      try {
        expect(await session.query("SELECT 'before ' || fact FROM facts;", 'before the vault')).toBe(true);
        await client.connect();
        expect((await client.query('SELECT fact FROM facts')).rows).toHaveLength(1);

        await connector.revoke(grant, provisioned.handle, long());

        await expect(client.query('SELECT fact FROM facts')).rejects.toThrow(/not queryable|terminat/i);
        expect(lost?.message).toMatch(/terminat/i);
        expect(await session.query("SELECT 'after ' || fact FROM facts;", 'after the vault', 3_000)).toBe(false);
        session.close();
        expect(await session.exited).not.toBe(0);
        expect(session.stderr).toMatch(/terminat|closed the connection/i);
        const again = await psql(login(provisioned), 'SELECT 1');
        expect(again.code).not.toBe(0);
        expect(again.stderr).toMatch(/role .* does not exist/);
        const roles = await scratch.dba.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [provisioned.credentials!.username]);
        expect(roles.rowCount).toBe(0);
      } finally {
        session.close();
        await client.end().catch(() => {});
      }
    });

    it("hands objects the role created to Lapse's role (ownedObjects: reassign), then drops the role", async () => {
      const t = target('ephemeral', {}, { roles: [scratch.writer] });
      const grant = grantOn(t, 'alice');
      const provisioned = await connector.provision(grant, long());
      const made = await psql(login(provisioned), 'CREATE TABLE scratch.notes_reassign (line text); GRANT SELECT ON scratch.notes_reassign TO PUBLIC');
      expect(made.stderr).toBe('');
      await connector.revoke(grant, provisioned.handle, long());
      const { rows } = await scratch.dba.query(`SELECT tableowner FROM pg_tables WHERE schemaname = 'scratch' AND tablename = 'notes_reassign'`);
      expect(rows).toEqual([{ tableowner: scratch.lapseUser }]);
      expect((await scratch.dba.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [provisioned.credentials!.username])).rowCount).toBe(0);
    });

    it('refuses to drop a role that owns objects under ownedObjects: refuse, but locks it out, and finishes once they are gone', async () => {
      const t = target('ephemeral', { ownedObjects: 'refuse' }, { roles: [scratch.writer] });
      const grant = grantOn(t, 'alice');
      const provisioned = await connector.provision(grant, long());
      const session = new PsqlSession(login(provisioned));
      try {
        expect(await session.query('CREATE TABLE scratch.notes_refuse (line text);', 'CREATE TABLE')).toBe(true);
        await expect(connector.revoke(grant, provisioned.handle, long())).rejects.toThrow(/owns 1 object\(s\) in lapsetest_pg_.*it can no longer log in/);
        const account = provisioned.credentials!.username!;
        const { rows } = await scratch.dba.query(
          'SELECT rolcanlogin, (SELECT count(*) FROM pg_auth_members WHERE member = r.oid)::int AS memberships FROM pg_roles r WHERE rolname = $1',
          [account],
        );
        expect(rows).toEqual([{ rolcanlogin: false, memberships: 0 }]);
        expect(await session.query("SELECT 'still here';", 'still here', 3_000)).toBe(false);
        expect((await psql(login(provisioned), 'SELECT 1')).code).not.toBe(0);

        await scratch.dba.query('DROP TABLE scratch.notes_refuse');
        await connector.revoke(grant, provisioned.handle, long());
        expect((await scratch.dba.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [account])).rowCount).toBe(0);
      } finally {
        session.close();
      }
    });
  });

  describe('elevate mode', () => {
    it('ends the sessions of the elevated role, because SET ROLE would keep the privileges', async () => {
      const t = target('elevate');
      const grant = grantOn(t, people[11]!);
      await connector.provision(grant, long());
      const session = new PsqlSession({ host: scratch.host, port: scratch.port, database: scratch.database, user: people[11]! });
      try {
        expect(await session.query(`SET ROLE ${scratch.reader}; SELECT 'as reader ' || fact FROM facts;`, 'as reader')).toBe(true);
        await connector.revoke(grant, null, long());
        expect(await session.query("SELECT 'again ' || fact FROM facts;", 'again the vault', 3_000)).toBe(false);
        expect(session.stderr).toMatch(/terminat|closed the connection/i);
        expect(await personCanRead(people[11]!)).toBe(false);
      } finally {
        session.close();
      }
    });

    it('with terminateSessions: false a SET ROLE session keeps reading after revoke (why the default is true)', async () => {
      const t = target('elevate', {}, { terminateSessions: false });
      const grant = grantOn(t, people[12]!);
      await connector.provision(grant, long());
      const session = new PsqlSession({ host: scratch.host, port: scratch.port, database: scratch.database, user: people[12]! });
      try {
        expect(await session.query(`SET ROLE ${scratch.reader}; SELECT 'first ' || fact FROM facts;`, 'first the vault')).toBe(true);
        await connector.revoke(grant, null, long());
        expect(await personCanRead(people[12]!)).toBe(false);
        expect(await session.query("SELECT 'still ' || fact FROM facts;", 'still the vault')).toBe(true);
      } finally {
        session.close();
      }
    });

    it('maps principals to roles through settings.accounts and reports them back by principal', async () => {
      const t = target('elevate', { accounts: { 'dana@example.com': people[13]! } });
      const grant = grantOn(t, 'dana@example.com');
      await connector.provision(grant, long());
      try {
        expect(await personCanRead(people[13]!)).toBe(true);
        const listed = await connector.listAccess(t, long());
        expect(listed).toContainEqual({ account: people[13]!, principalId: 'dana@example.com', entitlement: 'readonly', grantId: null });
      } finally {
        await connector.revoke(grant, null, long());
      }
      expect(await personCanRead(people[13]!)).toBe(false);
    });

    it("refuses to elevate Lapse's own role or an ephemeral one", async () => {
      await expect(connector.provision(grantOn(target('elevate'), scratch.lapseUser), long())).rejects.toThrow(/which is Lapse's own or an ephemeral role/);
      await expect(connector.provision(grantOn(target('elevate'), ephemeralAccountName(newId('grant'))), long())).rejects.toThrow(
        /which is Lapse's own or an ephemeral role/,
      );
    });

    it('shares an access key between entitlements granting the same roles to one account, and only then', () => {
      const t = scratch.target('pg-keys', {
        a: { mode: 'elevate', roles: [scratch.reader, scratch.writer] },
        b: { mode: 'elevate', roles: [scratch.writer, scratch.reader] },
        c: { mode: 'elevate', roles: [scratch.reader] },
        d: { roles: [scratch.reader] },
      });
      const key = (entitlement: string, principalId = 'bob') =>
        connector.accessKey({ ...grantOn(t, principalId), entitlement: t.entitlements.get(entitlement)! });
      expect(key('a')).toBe(key('b'));
      expect(key('a')).not.toBe(key('c'));
      expect(key('a')).not.toBe(key('a', 'carol'));
      expect(key('d')).not.toBe(key('d'));
    });

    it('fails clearly when the principal has no role', async () => {
      const grant = grantOn(target('elevate'), `nobody-${scratch.suffix}`);
      await expect(connector.provision(grant, long())).rejects.toThrow(/role "nobody-.*" does not exist .*cannot be elevated/);
      await connector.revoke(grant, null, long());
    });
  });

  describe('hostile names', () => {
    const hostile = [`x"; DROP ROLE postgres; --`, `it's`, `back\\slash`, `semi;colon and space`, `ünï-cødé ✓`, `$$; SELECT pg_sleep(5); $$`, `"quoted"`];

    it('grants roles with quotes, semicolons, backslashes, spaces and unicode exactly, without injection', async () => {
      const roles = hostile.map((name) => `${name} ${scratch.suffix}`);
      for (const role of roles) {
        await scratch.createRole(role);
        const { rows } = await scratch.dba.query<{ sql: string }>(`SELECT format('GRANT SELECT ON facts TO %I', $1::text) AS sql`, [role]);
        await scratch.dba.query(rows[0]!.sql);
      }
      const t = scratch.target(`pg-hostile-${scratch.suffix}`, { odd: { roles } });
      expect(connector.validateSettings(t)).toEqual([]);
      await connector.checkTarget(t, long());
      const grant = { ...grantOn(t, `mallory'); DROP TABLE facts; --`), entitlement: t.entitlements.get('odd')! };
      const provisioned = await connector.provision(grant, long());
      try {
        const { rows } = await scratch.dba.query<{ rolname: string }>(
          'SELECT g.rolname FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid JOIN pg_roles r ON r.oid = m.member WHERE r.rolname = $1 ORDER BY 1',
          [provisioned.credentials!.username],
        );
        expect(rows.map((r) => r.rolname)).toEqual([...roles].sort((a, b) => (Buffer.from(a) < Buffer.from(b) ? -1 : 1)));
        expect(await ephemeralCanRead(provisioned)).toBe(true);
        const listed = await connector.listAccess(t, long());
        expect(listed).toContainEqual({
          account: provisioned.credentials!.username,
          principalId: `mallory'); DROP TABLE facts; --`,
          entitlement: 'odd',
          grantId: grant.grantId,
        });
      } finally {
        await connector.revoke(grant, provisioned.handle, long());
      }
      expect((await scratch.dba.query(`SELECT count(*)::int AS n FROM pg_roles WHERE rolname = 'postgres'`)).rows).toEqual([{ n: 1 }]);
    });

    it('elevates an existing role whose name is hostile, and revokes it', async () => {
      const account = `bob"; DROP TABLE facts; -- ${scratch.suffix}`;
      await scratch.createRole(account, 'LOGIN');
      const grant = grantOn(target('elevate'), account);
      await connector.provision(grant, long());
      expect(await personCanRead(account)).toBe(true);
      await connector.revoke(grant, null, long());
      expect(await personCanRead(account)).toBe(false);
      expect((await scratch.dba.query('SELECT count(*)::int AS n FROM facts')).rows).toEqual([{ n: 1 }]);
    });

    it('refuses names it cannot quote safely or that are too long, and reserved lapse_ roles', () => {
      const t = scratch.target(
        'pg-bad',
        {
          nul: { roles: ['a\u0000b'] },
          long: { roles: ['é'.repeat(32)] },
          reserved: { roles: ['lapse_admin'] },
          empty: { roles: [] },
          twice: { roles: ['a', 'a'] },
          wrongmode: { mode: 'sudo', roles: ['a'], connectionLimit: 0 },
        },
        { port: 70_000, user: '', tls: { insecureSkipVerify: 'yes' }, extra: 1, ownedObjects: 'delete' },
      );
      expect(connector.validateSettings(t)).toEqual([
        'targets.pg-bad.settings.extra: unknown setting; known settings are host, port, database, user, password, tls, connectTimeout, maxConnections, accounts, ownedObjects, reassignOwnedTo',
        'targets.pg-bad.settings.port: must be a port number from 1 to 65535',
        'targets.pg-bad.settings.user: must be a non-empty role name',
        'targets.pg-bad.settings.tls.insecureSkipVerify: must be true or false',
        'targets.pg-bad.settings.ownedObjects: must be reassign or refuse',
        'targets.pg-bad.entitlements.nul.settings.roles[0]: the role name contains a control character; remove it',
        'targets.pg-bad.entitlements.long.settings.roles[0]: the role name is longer than 63 bytes',
        'targets.pg-bad.entitlements.reserved.settings.roles: names starting with lapse_ are reserved for ephemeral roles; rename the role',
        'targets.pg-bad.entitlements.empty.settings.roles: must be a list of 1 to 32 role names',
        'targets.pg-bad.entitlements.twice.settings.roles: lists a role twice; remove the duplicate',
        'targets.pg-bad.entitlements.wrongmode.settings.mode: must be ephemeral or elevate',
        'targets.pg-bad.entitlements.wrongmode.settings.connectionLimit: must be a whole number from 1 to 10000',
      ]);
    });

    it('refuses a principal whose name cannot be a role in elevate mode', async () => {
      await expect(connector.provision(grantOn(target('elevate'), 'x'.repeat(64)), long())).rejects.toThrow(/no usable PostgreSQL role name/);
    });
  });

  describe('checkTarget', () => {
    it("names CREATEROLE when Lapse's role lacks it", async () => {
      const weak = `lapsetest_weak_${scratch.suffix}`;
      await scratch.createRole(weak, 'LOGIN');
      await expect(connector.checkTarget(target('ephemeral', { user: weak }), long())).rejects.toMatchObject({
        code: 'forbidden',
        message: expect.stringMatching(/lacks: CREATEROLE; membership in pg_signal_backend/),
        details: { hint: `as a superuser run: ALTER ROLE "${weak}" CREATEROLE; GRANT pg_signal_backend TO "${weak}";` },
      });
    });

    it('names pg_signal_backend when only that is missing', async () => {
      const half = `lapsetest_half_${scratch.suffix}`;
      await scratch.createRole(half, 'LOGIN CREATEROLE');
      await expect(connector.checkTarget(target('ephemeral', { user: half }), long())).rejects.toThrow(
        /lacks: membership in pg_signal_backend \(to end sessions on revoke\)$/,
      );
    });

    it('names roles that do not exist', async () => {
      const t = scratch.target(`pg-missing-${scratch.suffix}`, { ghost: { roles: ['no_such_role_here'] } });
      await expect(connector.checkTarget(t, long())).rejects.toThrow(/has no role\(s\) "no_such_role_here"/);
    });

    it('refuses to hand out a superuser role it cannot grant', async () => {
      const t = scratch.target(`pg-super-${scratch.suffix}`, { god: { roles: ['postgres'] } });
      await expect(connector.checkTarget(t, long())).rejects.toThrow(/lacks: superuser \(to grant the superuser role "postgres"\)/);
    });

    it('asks for TLS when told to and does not fall back to plain text', async () => {
      await expect(connector.checkTarget(target('ephemeral', { tls: { enabled: true } }), long())).rejects.toThrow(/does not support SSL/);
    });

    it('warns loudly when certificate verification is switched off', async () => {
      await connector.checkTarget(target('ephemeral', { tls: { insecureSkipVerify: true } }), long()).catch(() => {});
      expect(warnings.some((w) => /insecureSkipVerify: true; the server certificate is NOT verified/.test(w))).toBe(true);
    });

    it('reports an unreachable server with the address, and honours the deadline', async () => {
      await expect(connector.checkTarget(target('ephemeral', { port: 1 }), long())).rejects.toMatchObject({
        code: 'connector_failed',
        details: { hint: `check that PostgreSQL is reachable at ${scratch.host}:1` },
      });
      // A server that accepts the connection and then never answers.
      const silent = createServer(() => {});
      await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
      try {
        const started = Date.now();
        const port = (silent.address() as AddressInfo).port;
        await expect(connector.checkTarget(target('ephemeral', { host: '127.0.0.1', port }), AbortSignal.timeout(300))).rejects.toMatchObject({
          code: 'connector_timeout',
        });
        expect(Date.now() - started).toBeLessThan(2_000);
      } finally {
        silent.close();
      }
    });
  });
});
