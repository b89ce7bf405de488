import { createServer, type AddressInfo } from 'node:net';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TargetConfig } from '../../config/types.js';
import { newId } from '../../domain/ids.js';
import { connectorConformance } from '../testing/conformance.js';
import type { GrantSpec, ProvisionResult } from '../types.js';
import { MysqlConnector } from './mysql-connector.js';
import { MysqlSessions } from './sessions.js';
import { mysqlTarget } from './settings.js';
import { MariadbSession, mariadb } from './testing/mariadb-client.js';
import { MYSQL_URL, openMysqlScratch, type MysqlScratch } from './testing/scratch-server.js';
import { ephemeralAccountName } from '../shared/index.js';

const offline = process.env.LAPSE_TEST_OFFLINE === '1';
const long = () => AbortSignal.timeout(30_000);

let scratch: MysqlScratch;
const warnings: string[] = [];
const connector = new MysqlConnector({ warn: (message) => warnings.push(message) });
const people: string[] = [];
const PERSON_PASSWORD = 'person-password-1';

beforeAll(async () => {
  if (offline) return;
  scratch = await openMysqlScratch();
  for (let i = 0; i < 12; i++) {
    people.push(`lapsetest_p${i}_${scratch.suffix}`);
    await scratch.createUser(people[i]!, PERSON_PASSWORD);
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

type Kind = 'grants' | 'role' | 'elevate';

function entitlementSettings(kind: Kind): Record<string, unknown> {
  if (kind === 'grants') return { grants: [{ privileges: ['select'], database: scratch.database, table: 'facts' }] };
  if (kind === 'role') return { role: scratch.reader };
  return { mode: 'elevate', role: scratch.reader };
}

function target(kind: Kind, settings: Record<string, unknown> = {}, entitlement: Record<string, unknown> = {}): TargetConfig {
  return scratch.target(`my-${kind}-${scratch.suffix}`, { readonly: { ...entitlementSettings(kind), ...entitlement } }, settings);
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
  user: provisioned.credentials!.username!,
  password: provisioned.credentials!.password!,
});
const readFacts = () => `SELECT fact FROM \`${scratch.database}\`.facts WHERE id = 1`;

async function ephemeralCanRead(provisioned: ProvisionResult): Promise<boolean> {
  const result = await mariadb(login(provisioned), readFacts());
  return result.code === 0 && result.stdout === 'the vault is behind the painting';
}

/** The existing user logs in with its own password and activates the role (elevate mode). */
async function personCanRead(user: string): Promise<boolean> {
  const result = await mariadb({ host: scratch.host, port: scratch.port, user, password: PERSON_PASSWORD }, `SET ROLE \`${scratch.reader}\`; ${readFacts()}`);
  return result.code === 0 && result.stdout === 'the vault is behind the painting';
}

describe.skipIf(offline)('mysql connector', () => {
  let next = 0;
  for (const kind of ['grants', 'role'] as const) {
    connectorConformance({
      name: `mysql (ephemeral user with ${kind})`,
      connector: () => connector,
      grant: (overrides) => grantOn(target(kind), `user-${next++}@example.com`, overrides),
      hasAccess: (_grant, provisioned) => ephemeralCanRead(provisioned),
    });
  }

  let person = 0;
  connectorConformance({
    name: 'mysql (elevate existing user)',
    connector: () => connector,
    grant: (overrides) => grantOn(target('elevate'), people[person++ % 9]!, overrides),
    hasAccess: (grant) => personCanRead(grant.principalId),
    createUnmanaged: async () => {
      await scratch.dba.query(`GRANT \`${scratch.reader}\` TO ?@'%'`, [people[9]!]);
      return people[9]!;
    },
  });

  describe('ephemeral users', () => {
    it('revoke kills an open mariadb client session and an open mysql2 connection, and new logins fail', async () => {
      const grant = grantOn(target('grants'), 'alice');
      const provisioned = await connector.provision(grant, long());
      const session = new MariadbSession(login(provisioned));
      const connection = await mysql.createConnection({
        host: scratch.host,
        port: scratch.port,
        user: login(provisioned).user,
        password: login(provisioned).password,
      });
      connection.on('error', () => {});
      try {
        expect(await session.query(`SELECT CONCAT('before ', fact) FROM \`${scratch.database}\`.facts;`, 'before the vault')).toBe(true);
        const [rows] = await connection.query<mysql.RowDataPacket[]>(readFacts());
        expect(rows).toHaveLength(1);

        await connector.revoke(grant, provisioned.handle, long());

        await expect(connection.query(readFacts())).rejects.toThrow(/closed|killed|interrupted|lost|gone/i);
        expect(await session.query(`SELECT CONCAT('after ', fact) FROM \`${scratch.database}\`.facts;`, 'after the vault', 3_000)).toBe(false);
        expect(session.stderr).toMatch(/gone away|Lost connection|killed|Access denied/i);
        const again = await mariadb(login(provisioned), 'SELECT 1');
        expect(again.code).not.toBe(0);
        expect(again.stderr).toMatch(/Access denied for user/);
        const [users] = await scratch.dba.query<mysql.RowDataPacket[]>('SELECT 1 FROM mysql.user WHERE User = ?', [login(provisioned).user]);
        expect(users).toHaveLength(0);
      } finally {
        session.close();
        connection.destroy();
      }
    });

    it('issues a fresh password on a repeated provision; the server refuses the old one', async () => {
      const grant = grantOn(target('grants'), 'alice');
      const first = await connector.provision(grant, long());
      const second = await connector.provision(grant, long());
      try {
        expect(second.credentials!.password).not.toBe(first.credentials!.password);
        expect(second.credentials!.password!.length).toBeGreaterThanOrEqual(32);
        expect(JSON.stringify(second.handle)).not.toContain(second.credentials!.password);
        expect(await ephemeralCanRead(second)).toBe(true);
        const old = await mariadb(login(first), 'SELECT 1');
        expect(old.stderr).toMatch(/Access denied/);
      } finally {
        await connector.revoke(grant, second.handle, long());
      }
    });

    it('grants exactly the listed privileges on the named table, at the configured host pattern, with a connection limit', async () => {
      const t = target('grants', {}, { host: '127.0.0.%', maxUserConnections: 2 });
      const grant = grantOn(t, 'alice');
      const provisioned = await connector.provision(grant, long());
      try {
        const user = login(provisioned).user;
        const [grants] = await scratch.dba.query<mysql.RowDataPacket[]>(`SHOW GRANTS FOR ?@'127.0.0.%'`, [user]);
        const lines = grants.map((row) => String(Object.values(row)[0]));
        expect(lines).toContain(`GRANT SELECT ON \`${scratch.database}\`.\`facts\` TO \`${user}\`@\`127.0.0.%\``);
        expect(lines).toHaveLength(2);
        const [limits] = await scratch.dba.query<mysql.RowDataPacket[]>('SELECT max_user_connections AS n FROM mysql.user WHERE User = ?', [user]);
        expect(limits).toEqual([{ n: 2 }]);
        expect((await mariadb(login(provisioned), `INSERT INTO \`${scratch.database}\`.facts VALUES (2, 'no')`)).stderr).toMatch(/INSERT command denied/);
      } finally {
        await connector.revoke(grant, provisioned.handle, long());
      }
    });

    it('makes the role the default role, so a plain login has it', async () => {
      const grant = grantOn(target('role'), 'alice');
      const provisioned = await connector.provision(grant, long());
      try {
        const result = await mariadb(login(provisioned), 'SELECT CURRENT_ROLE()');
        expect(result.stdout).toBe(scratch.reader);
      } finally {
        await connector.revoke(grant, provisioned.handle, long());
      }
    });
    it('sets the default role with SET DEFAULT ROLE ... FOR when the host pattern keeps Lapse from logging in as the user, and says what to do when it cannot', async () => {
      const farAway = { host: '10.9.9.%' };
      const restricted = target('role', {}, farAway);
      const grant = grantOn(restricted, 'alice');
      await expect(connector.provision(grant, long())).rejects.toThrow(
        /cannot make `lapsetest_reader_.*` the default role of lapse_.*: logging in as that user failed .* and so did SET DEFAULT ROLE \.\.\. FOR/,
      );
      await connector.revoke(grant, null, long());

      // An administrator with write access to the mysql database (here the server's root) can.
      const server = new URL(MYSQL_URL);
      const powerful = target('role', { user: decodeURIComponent(server.username), password: decodeURIComponent(server.password) || undefined }, farAway);
      const second = grantOn(powerful, 'alice');
      await connector.provision(second, long());
      try {
        const [rows] = await scratch.dba.query<mysql.RowDataPacket[]>('SELECT default_role FROM mysql.user WHERE User = ? AND Host = ?', [
          ephemeralAccountName(second.grantId),
          '10.9.9.%',
        ]);
        expect(rows).toEqual([{ default_role: scratch.reader }]);
      } finally {
        await connector.revoke(second, null, long());
      }
    });
  });

  describe('elevate mode', () => {
    it("kills the existing user's sessions on revoke, since SET ROLE may keep the role", async () => {
      const user = people[10]!;
      const grant = grantOn(target('elevate'), user);
      await connector.provision(grant, long());
      const session = new MariadbSession({ host: scratch.host, port: scratch.port, user, password: PERSON_PASSWORD });
      try {
        expect(
          await session.query(`SET ROLE \`${scratch.reader}\`; SELECT CONCAT('as reader ', fact) FROM \`${scratch.database}\`.facts;`, 'as reader the vault'),
        ).toBe(true);
        await connector.revoke(grant, null, long());
        const [left] = await scratch.dba.query<mysql.RowDataPacket[]>('SELECT ID FROM information_schema.PROCESSLIST WHERE USER = ?', [user]);
        expect(left).toHaveLength(0);
        expect(await personCanRead(user)).toBe(false);
      } finally {
        session.close();
      }
    });

    it("refuses to elevate Lapse's own user or an ephemeral one", async () => {
      await expect(connector.provision(grantOn(target('elevate'), scratch.lapseUser), long())).rejects.toThrow(/which is Lapse's own or an ephemeral user/);
      await expect(connector.provision(grantOn(target('elevate', { accounts: { eve: ephemeralAccountName(newId('grant')) } }), 'eve'), long())).rejects.toThrow(
        /which is Lapse's own or an ephemeral user/,
      );
    });

    it('maps principals through settings.accounts and lists them by principal', async () => {
      const t = target('elevate', { accounts: { 'dana@example.com': people[11]! } });
      const grant = grantOn(t, 'dana@example.com');
      await connector.provision(grant, long());
      try {
        expect(await personCanRead(people[11]!)).toBe(true);
        expect(await connector.listAccess(t, long())).toContainEqual({
          account: `${people[11]}@%`,
          principalId: 'dana@example.com',
          entitlement: 'readonly',
          grantId: null,
        });
      } finally {
        await connector.revoke(grant, null, long());
      }
      expect(await personCanRead(people[11]!)).toBe(false);
    });
  });

  describe('hostile names', () => {
    const hostile = ['x`; DROP DATABASE mysql; --', "it's", 'back\\slash', 'dotted.name', 'semi;colon space', 'ünï-cødé ✓', `"dq"`];

    it('grants roles named with backquotes, quotes, backslashes, dots and unicode exactly, without injection', async () => {
      for (const [i, name] of hostile.entries()) {
        const role = `${name}${i}${scratch.suffix}`.slice(0, 60);
        await scratch.createRole(role);
        await scratch.grantOn('SELECT', role, true);
        await scratch.dba.query(`GRANT ${mysql.escapeId(role, true)} TO '${scratch.lapseUser}'@'%' WITH ADMIN OPTION`);
        const t = scratch.target(`my-hostile-${i}-${scratch.suffix}`, { odd: { role } });
        expect(connector.validateSettings(t)).toEqual([]);
        await connector.checkTarget(t, long());
        const grant = { ...grantOn(t, "mallory'@'%' IDENTIFIED BY 'x"), entitlement: t.entitlements.get('odd')! };
        const provisioned = await connector.provision(grant, long());
        try {
          const [mapped] = await scratch.dba.query<mysql.RowDataPacket[]>('SELECT Role FROM mysql.roles_mapping WHERE User = ?', [login(provisioned).user]);
          expect(mapped).toEqual([{ Role: role }]);
          expect(await ephemeralCanRead(provisioned)).toBe(true);
          expect(await connector.listAccess(t, long())).toContainEqual(
            expect.objectContaining({ principalId: "mallory'@'%' IDENTIFIED BY 'x", entitlement: 'odd', grantId: grant.grantId }),
          );
        } finally {
          await connector.revoke(grant, provisioned.handle, long());
        }
      }
      const [dbs] = await scratch.dba.query<mysql.RowDataPacket[]>(`SHOW DATABASES LIKE 'mysql'`);
      expect(dbs).toHaveLength(1);
    });

    it('elevates an existing user whose name is hostile, and revokes it', async () => {
      const user = `bob'@'%'; DROP USER root; -- \\ ${scratch.suffix}`;
      await scratch.createUser(user, PERSON_PASSWORD);
      const grant = grantOn(target('elevate'), user);
      await connector.provision(grant, long());
      expect(await personCanRead(user)).toBe(true);
      await connector.revoke(grant, null, long());
      expect(await personCanRead(user)).toBe(false);
      const [roots] = await scratch.dba.query<mysql.RowDataPacket[]>(`SELECT 1 FROM mysql.user WHERE User = 'root'`);
      expect(roots.length).toBeGreaterThan(0);
    });

    it('grants on a database whose name needs quoting', async () => {
      const db = `odd\`db.${scratch.suffix}`;
      await scratch.dba.query(`CREATE DATABASE ${mysql.escapeId(db, true)}`);
      try {
        await scratch.dba.query(`CREATE TABLE ${mysql.escapeId(db, true)}.\`t;x\` (v INT)`);
        await scratch.dba.query(`GRANT SELECT ON ${mysql.escapeId(db, true)}.* TO '${scratch.lapseUser}'@'%' WITH GRANT OPTION`);
        const t = scratch.target(`my-odddb-${scratch.suffix}`, { odd: { grants: [{ privileges: ['SELECT'], database: db, table: 't;x' }] } });
        await connector.checkTarget(t, long());
        const grant = { ...grantOn(t, 'alice'), entitlement: t.entitlements.get('odd')! };
        const provisioned = await connector.provision(grant, long());
        try {
          const result = await mariadb(login(provisioned), `SELECT COUNT(*) FROM ${mysql.escapeId(db, true)}.\`t;x\``);
          expect(result).toMatchObject({ code: 0, stdout: '0' });
        } finally {
          await connector.revoke(grant, provisioned.handle, long());
        }
      } finally {
        await scratch.dba.query(`DROP DATABASE ${mysql.escapeId(db, true)}`);
      }
    });

    it('mysql2 escaping round-trips hostile values through the server, with NO_BACKSLASH_ESCAPES cleared per connection', async () => {
      const values = ["'", '\\', "\\'; DROP USER root; --", '\u0000', '\u001a', '"', '`', 'ünï ✓', "' OR '1'='1", '%_'];
      const sessions = new MysqlSessions(() => {});
      const settings = mysqlTarget(target('grants'));
      await sessions.run(settings, long(), 'escaping check', async (connection) => {
        // With NO_BACKSLASH_ESCAPES on, mysql2's backslash escaping no longer means what it wrote (why Lapse clears it)…
        await connection.query(`SET SESSION sql_mode = CONCAT(@@SESSION.sql_mode, ',NO_BACKSLASH_ESCAPES')`);
        const [broken] = await connection.query<mysql.RowDataPacket[]>('SELECT ? AS v', ["a\\'b"]).then(
          ([rows]) => [rows[0]!.v],
          () => ['error'],
        );
        expect(broken).not.toBe("a\\'b");
      });
      // …and a fresh connection from Lapse starts with it cleared, so values come back exactly.
      const roundTrip = await sessions.run(settings, long(), 'escaping check', async (connection) => {
        const out: string[] = [];
        for (const value of values) {
          const [rows] = await connection.query<mysql.RowDataPacket[]>('SELECT ? AS v', [value]);
          out.push(String(rows[0]!.v));
        }
        return out;
      });
      expect(roundTrip).toEqual(values);
    });

    it('refuses privileges outside the allow-list and malformed entitlements', () => {
      const t = scratch.target(
        'my-bad',
        {
          all: { grants: [{ privileges: ['ALL PRIVILEGES', 'select; DROP TABLE x', 'SUPER', 'grant option'], database: 'app' }] },
          star: { grants: [{ privileges: ['SELECT'], database: '*' }] },
          both: { role: 'r', grants: [{ privileges: ['SELECT'], database: 'app' }] },
          neither: {},
          elevate: { mode: 'elevate' },
          nul: { role: 'a\u0000b' },
          long: { role: 'r'.repeat(129) },
        },
        { port: 0, tls: { ca: 'not a pem' } },
      );
      expect(connector.validateSettings(t)).toEqual([
        'targets.my-bad.settings.port: must be a port number from 1 to 65535',
        'targets.my-bad.settings.tls.ca: must be a PEM certificate bundle (up to 64 KiB); write ${file:/path/to/ca.pem}',
        'targets.my-bad.entitlements.all.settings.grants[0].privileges[0]: "ALL PRIVILEGES" is not a privilege Lapse grants; use one of SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, INDEX, ALTER, REFERENCES, CREATE TEMPORARY TABLES, LOCK TABLES, EXECUTE, CREATE VIEW, SHOW VIEW, CREATE ROUTINE, ALTER ROUTINE, EVENT, TRIGGER, DELETE HISTORY',
        'targets.my-bad.entitlements.all.settings.grants[0].privileges[1]: "select; DROP TABLE x" is not a privilege Lapse grants; use one of SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, INDEX, ALTER, REFERENCES, CREATE TEMPORARY TABLES, LOCK TABLES, EXECUTE, CREATE VIEW, SHOW VIEW, CREATE ROUTINE, ALTER ROUTINE, EVENT, TRIGGER, DELETE HISTORY',
        'targets.my-bad.entitlements.all.settings.grants[0].privileges[2]: "SUPER" is not a privilege Lapse grants; use one of SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, INDEX, ALTER, REFERENCES, CREATE TEMPORARY TABLES, LOCK TABLES, EXECUTE, CREATE VIEW, SHOW VIEW, CREATE ROUTINE, ALTER ROUTINE, EVENT, TRIGGER, DELETE HISTORY',
        'targets.my-bad.entitlements.all.settings.grants[0].privileges[3]: "grant option" is not a privilege Lapse grants; use one of SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, INDEX, ALTER, REFERENCES, CREATE TEMPORARY TABLES, LOCK TABLES, EXECUTE, CREATE VIEW, SHOW VIEW, CREATE ROUTINE, ALTER ROUTINE, EVENT, TRIGGER, DELETE HISTORY',
        'targets.my-bad.entitlements.star.settings.grants[0].database: name one database; Lapse does not grant on *.*',
        'targets.my-bad.entitlements.both.settings: an ephemeral user gets either grants: [...] or role: <name>; give exactly one',
        'targets.my-bad.entitlements.neither.settings: an ephemeral user gets either grants: [...] or role: <name>; give exactly one',
        "targets.my-bad.entitlements.elevate.settings.role: mode: elevate grants a role to the principal's existing user; name it",
        'targets.my-bad.entitlements.nul.settings.role: the role name contains a control character; remove it',
        'targets.my-bad.entitlements.long.settings.role: the role name is longer than 128 characters',
      ]);
    });
  });

  describe('checkTarget', () => {
    it('names every privilege a restricted Lapse user lacks, with the GRANT that fixes it', async () => {
      const weak = `lapsetest_weak_${scratch.suffix}`;
      await scratch.createUser(weak, 'weak-password-1');
      await scratch.dba.query(`GRANT CREATE USER ON *.* TO ?@'%'`, [weak]);
      const t = scratch.target(
        `my-weak-${scratch.suffix}`,
        { readonly: entitlementSettings('grants'), role: entitlementSettings('role') },
        { user: weak, password: 'weak-password-1' },
      );
      const failure = await connector.checkTarget(t, long()).catch((error: unknown) => error);
      expect(failure).toMatchObject({ code: 'forbidden' });
      const message = (failure as Error).message;
      for (const missing of [
        'PROCESS (to see the connections revoke must kill)',
        "CONNECTION ADMIN (to kill other users' connections)",
        `SELECT ON \`${scratch.database}\`.\`facts\` WITH GRANT OPTION (entitlement readonly)`,
        `role \`${scratch.reader}\` WITH ADMIN OPTION (entitlement role)`,
        'SELECT (User, Host) ON mysql.user',
        'SELECT ON mysql.roles_mapping',
        `ON \`${scratch.registryDatabase}\`.*`,
      ])
        expect(message).toContain(missing);
      expect(message).not.toContain('CREATE USER;');
      expect((failure as { details: { hint: string } }).details.hint).toContain(`GRANT CONNECTION ADMIN ON *.* TO '${weak}'@'%';`);
    });

    it('names CONNECTION ADMIN alone when only the right to kill is missing', async () => {
      const half = `lapsetest_half_${scratch.suffix}`;
      await scratch.createUser(half, 'half-password-1');
      for (const sql of [
        `GRANT CREATE USER, PROCESS ON *.* TO ?@'%'`,
        `GRANT SELECT (User, Host) ON mysql.user TO ?@'%'`,
        `GRANT SELECT ON mysql.roles_mapping TO ?@'%'`,
        `GRANT CREATE, SELECT, INSERT, UPDATE, DELETE ON \`${scratch.registryDatabase}\`.* TO ?@'%'`,
        `GRANT SELECT ON \`${scratch.database}\`.* TO ?@'%' WITH GRANT OPTION`,
      ])
        await scratch.dba.query(sql, [half]);
      const t = target('grants', { user: half, password: 'half-password-1' });
      await expect(connector.checkTarget(t, long())).rejects.toThrow(/lacks: CONNECTION ADMIN \(to kill other users' connections\)$/);
    });

    it('asks for TLS when told to and does not fall back to plain text; warns when verification is off', async () => {
      await expect(connector.checkTarget(target('grants', { tls: { enabled: true } }), long())).rejects.toThrow(/secure connection|SSL/i);
      await connector.checkTarget(target('grants', { tls: { insecureSkipVerify: true } }), long()).catch(() => {});
      expect(warnings.some((w) => /insecureSkipVerify: true; the server certificate is NOT verified/.test(w))).toBe(true);
    });

    it('reports wrong credentials without echoing the password, and honours the deadline', async () => {
      const failure = await connector.checkTarget(target('grants', { password: 'wrong-secret-value' }), long()).catch((error: unknown) => error);
      expect(failure).toMatchObject({ code: 'connector_failed', details: { hint: expect.stringContaining('settings.user and password') } });
      expect(JSON.stringify(failure) + (failure as Error).message).not.toContain('wrong-secret-value');

      const silent = createServer(() => {});
      await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
      try {
        const started = Date.now();
        const port = (silent.address() as AddressInfo).port;
        await expect(connector.checkTarget(target('grants', { host: '127.0.0.1', port }), AbortSignal.timeout(300))).rejects.toMatchObject({
          code: 'connector_timeout',
        });
        expect(Date.now() - started).toBeLessThan(2_000);
      } finally {
        silent.close();
      }
    });
  });
});
