import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { EntitlementConfig, TargetConfig } from '../../../config/types.js';

/**
 * A throw-away corner of the real PostgreSQL server for connector tests and benchmarks: its own
 * database, its own Lapse role (CREATEROLE + pg_signal_backend, NOT superuser, exactly as
 * docs/connectors/postgres.md tells operators), NOLOGIN roles to grant, and cleanup of all of it.
 */
export const POSTGRES_URL = process.env.LAPSE_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

export interface PostgresScratch {
  readonly suffix: string;
  readonly host: string;
  readonly port: number;
  readonly database: string;
  /** Lapse's role at the target. */
  readonly lapseUser: string;
  /** A NOLOGIN role with SELECT on table `facts`. */
  readonly reader: string;
  /** A NOLOGIN role that may create tables in schema `scratch`. */
  readonly writer: string;
  /** Superuser connection to the scratch database (the DBA's view). */
  readonly dba: pg.Client;
  target(name: string, entitlements: Record<string, Record<string, unknown>>, settings?: Record<string, unknown>): TargetConfig;
  /** Creates a role (quoted server-side with format('%I')) and remembers it for cleanup. */
  createRole(name: string, options?: string): Promise<void>;
  close(): Promise<void>;
}

export async function openPostgresScratch(serverUrl: string = POSTGRES_URL): Promise<PostgresScratch> {
  const suffix = randomBytes(4).toString('hex');
  const url = new URL(serverUrl);
  const database = `lapsetest_pg_${suffix}`;
  const lapseUser = `lapsetest_admin_${suffix}`;
  const reader = `lapsetest_reader_${suffix}`;
  const writer = `lapsetest_writer_${suffix}`;
  const roles: string[] = [];

  const root = new pg.Client({ connectionString: serverUrl, connectionTimeoutMillis: 3000 });
  try {
    await root.connect();
  } catch (error) {
    throw new Error(
      `The PostgreSQL connector tests need a PostgreSQL superuser at ${serverUrl} (${(error as Error).message}). ` +
        'Start it, point LAPSE_TEST_POSTGRES_URL at one, or run `npm run test:offline`.',
    );
  }
  const createRole = async (name: string, options = 'NOLOGIN') => {
    const { rows } = await root.query<{ sql: string }>(`SELECT format('CREATE ROLE %I ${options}', $1::text) AS sql`, [name]);
    await root.query(rows[0]!.sql);
    roles.push(name);
  };
  await root.query(`CREATE DATABASE ${root.escapeIdentifier(database)}`);
  await createRole(lapseUser, 'LOGIN CREATEROLE');
  await root.query(`ALTER ROLE ${root.escapeIdentifier(lapseUser)} PASSWORD ${root.escapeLiteral(randomBytes(12).toString('hex'))}`);
  await root.query(`GRANT pg_signal_backend TO ${root.escapeIdentifier(lapseUser)}`);
  await createRole(reader);
  await createRole(writer);

  const dbUrl = new URL(serverUrl);
  dbUrl.pathname = `/${database}`;
  const dba = new pg.Client({ connectionString: dbUrl.toString() });
  await dba.connect();
  await dba.query(`CREATE TABLE facts (id int PRIMARY KEY, fact text NOT NULL);
    INSERT INTO facts VALUES (1, 'the vault is behind the painting');
    GRANT SELECT ON facts TO ${dba.escapeIdentifier(reader)};
    CREATE SCHEMA scratch;
    GRANT USAGE, CREATE ON SCHEMA scratch TO ${dba.escapeIdentifier(writer)};`);

  return {
    suffix,
    host: url.hostname,
    port: Number(url.port || 5432),
    database,
    lapseUser,
    reader,
    writer,
    dba,
    createRole: async (name, options) => {
      await createRole(name, options);
      await dba.query(`GRANT CONNECT ON DATABASE ${dba.escapeIdentifier(database)} TO ${dba.escapeIdentifier(name)}`);
    },
    target(name, entitlements, settings = {}) {
      const map = new Map<string, EntitlementConfig>(
        Object.entries(entitlements).map(([ename, esettings]) => [ename, { name: ename, target: name, description: '', settings: esettings, labels: {} }]),
      );
      return {
        name,
        connector: 'postgres',
        description: '',
        settings: { host: url.hostname, port: Number(url.port || 5432), database, user: lapseUser, ...settings },
        labels: {},
        entitlements: map,
      };
    },
    async close() {
      await dba.end().catch(() => {});
      await root.query(`DROP DATABASE IF EXISTS ${root.escapeIdentifier(database)} WITH (FORCE)`);
      // Ephemeral roles the tests left behind (a failed assertion before revoke) on this scratch's targets.
      const leftovers = await root.query<{ rolname: string }>(
        `SELECT rolname FROM pg_roles WHERE rolname LIKE 'lapse\\_%' AND shobj_description(oid, 'pg_authid') LIKE $1`,
        [`%"target":"%${suffix}%`],
      );
      for (const name of [...leftovers.rows.map((r) => r.rolname), ...roles.reverse()]) {
        await root.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1`, [name]);
        await root.query(`DROP OWNED BY ${root.escapeIdentifier(name)}`).catch(() => {});
        await root.query(`DROP ROLE IF EXISTS ${root.escapeIdentifier(name)}`).catch(() => {});
      }
      await root.end();
    },
  };
}
