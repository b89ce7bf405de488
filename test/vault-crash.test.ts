import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPasswordCluster, type PasswordCluster } from '../src/connectors/postgres/testing/password-cluster.js';
import { VAULT_FAILPOINTS } from '../src/engine/index.js';
import { vaultSealContext } from '../src/engine/vault-rotation.js';
import { createSealer } from '../src/secrets/index.js';
import { getVaultAccount, openStore } from '../src/store/index.js';
import { offline } from './support/environment.js';
import { createServerDatabase, type ServerDatabase } from './support/stores.js';

/**
 * The vault's promise under kill -9, against a real PostgreSQL target that checks passwords:
 * wherever a rotation is cut short (after the pending password was stored, after the target
 * changed, after the login check), the next Lapse finishes it with the same pending password, so
 * the account always ends with a password Lapse holds, and the one before never works again.
 * Both for the rotation right after onboarding and for the one at check-in. Lapse's own database
 * is PostgreSQL here (several processes share it, as replicas would).
 */
const LAPSE_PASSWORD = 'lapse-admin-password-for-vault-crash';

interface Run {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stderr: string;
}

describe.skipIf(offline())('vault rotation survives kill -9 [postgres target, postgres store]', () => {
  let cluster: PasswordCluster;
  let dba: pg.Client;
  const root = mkdtempSync(join(tmpdir(), 'lapse-vault-crash-'));
  const databases: ServerDatabase[] = [];
  const key = randomBytes(32);
  const sealer = createSealer(key);
  const stderrs: string[] = [];
  const passwords = new Set<string>();

  beforeAll(async () => {
    cluster = await startPasswordCluster();
    dba = new pg.Client({ host: cluster.host, port: cluster.port, user: 'postgres', database: 'postgres' });
    await dba.connect();
    await dba.query(`CREATE ROLE lapse LOGIN CREATEROLE PASSWORD '${LAPSE_PASSWORD}'; GRANT pg_signal_backend TO lapse;`);
  }, 120_000);
  afterAll(async () => {
    // No password ever reached a log line of any of the processes.
    expect(stderrs.length).toBeGreaterThan(0);
    for (const password of passwords) for (const stderr of stderrs) expect(stderr).not.toContain(password);
    await dba?.end().catch(() => {});
    await cluster?.stop();
    for (const database of databases) await database.drop();
    rmSync(root, { recursive: true, force: true });
  });

  const logsIn = async (user: string, password: string): Promise<boolean> => {
    const client = new pg.Client({ host: cluster.host, port: cluster.port, database: 'postgres', user, password });
    client.on('error', () => {});
    try {
      await client.connect();
      return true;
    } catch (error) {
      if ((error as { code?: string }).code === '28P01') return false;
      throw error;
    } finally {
      await client.end().catch(() => {});
    }
  };

  function run(args: string[], failpoint = '', env: Record<string, string> = {}): Promise<Run> {
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, ['--import', 'tsx', 'test/support/vault-crash-child.ts', ...args], {
        env: { ...process.env, LAPSE_FAILPOINTS: failpoint, LAPSE_TEST_PG_PASSWORD: LAPSE_PASSWORD, ...env },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let stderr = '';
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      child.on('error', reject);
      child.on('exit', (code, signal) => {
        stderrs.push(stderr);
        resolve({ code, signal, stderr });
      });
    });
  }

  it.each(VAULT_FAILPOINTS)(
    'a crash at %s still ends with a password only Lapse holds, and the one before never works again',
    async (failpoint) => {
      const dir = mkdtempSync(join(root, 'case-'));
      const account = `owner_${randomBytes(3).toString('hex')}`;
      const initial = `Initial-${randomBytes(12).toString('hex')}`;
      passwords.add(initial);
      await dba.query(`CREATE ROLE ${account} LOGIN PASSWORD '${initial}'`);
      const configPath = join(dir, 'lapse.yaml');
      writeFileSync(
        configPath,
        `version: 1
roles: { admins: { users: [root] } }
targets:
  db:
    connector: postgres
    settings: { host: ${cluster.host}, port: ${cluster.port}, database: postgres, user: lapse, password: "\${env:LAPSE_TEST_PG_PASSWORD}" }
    entitlements:
      owner: { checkout: { account: ${account} } }
policies:
  - { name: dba, subjects: { groups: [dba] }, entitlements: ["db/owner"], autoApprove: true, duration: { default: 1h, max: 2h } }
scheduler: { pollInterval: 100ms, connectorTimeout: 5s, revokeBackoff: { min: 50ms, max: 500ms } }
`,
      );
      const database = await createServerDatabase();
      databases.push(database);
      const args = (mode: string, file = '') => [mode, configPath, database.url, key.toString('base64'), account, ...(file ? [file] : [])];
      const current = async () => {
        const store = await openStore({ databaseUrl: database.url });
        try {
          const row = (await getVaultAccount(store.db, { target: 'db', account }))!;
          expect(row).toMatchObject({ status: 'ready', pendingSealed: null });
          const password = sealer.open(row.currentSealed, vaultSealContext(row.id, row.generation));
          passwords.add(password);
          const statuses = await store.db.selectFrom('grants').select('status').execute();
          const audit = (await store.db.selectFrom('audit_events').select('payload').execute()).map((r) => r.payload).join('\n');
          for (const known of passwords) expect(audit).not.toContain(known);
          return { password, generation: row.generation, statuses: statuses.map((s) => s.status) };
        } finally {
          await store.close();
        }
      };

      /** The pending password a crashed rotation left behind (stored before the target was told). */
      const pending = async () => {
        const store = await openStore({ databaseUrl: database.url });
        try {
          const row = (await getVaultAccount(store.db, { target: 'db', account }))!;
          expect(row.status).toBe('rotating');
          const password = sealer.open(row.pendingSealed!, vaultSealContext(row.id, row.generation + 1));
          passwords.add(password);
          return password;
        } finally {
          await store.close();
        }
      };

      // 1. The rotation right after onboarding is cut short, then finished by the next process.
      const crashed = await run(args('onboard'), failpoint, { LAPSE_TEST_ONBOARD_PASSWORD: initial });
      expect(crashed.signal, `should have been killed at ${failpoint}: ${crashed.stderr.slice(-2000)}`).toBe('SIGKILL');
      const left = await pending();
      const resumed = await run(args('resume'));
      expect(resumed.code, resumed.stderr.slice(-2000)).toBe(0);
      const onboarded = await current();
      // Finished with the very password stored before the crash, not a fresh one.
      expect(onboarded.password).toBe(left);
      expect(await logsIn(account, onboarded.password)).toBe(true);
      expect(await logsIn(account, initial)).toBe(false);

      // 2. A check-out, then the rotation at its check-in is cut short.
      const handedOut = join(dir, 'handed-out');
      const checkedOut = await run(args('checkout', handedOut));
      expect(checkedOut.code, checkedOut.stderr.slice(-2000)).toBe(0);
      const seen = readFileSync(handedOut, 'utf8');
      expect(seen).toBe(onboarded.password);
      const released = await run(args('release'), failpoint);
      expect(released.signal, `should have been killed at ${failpoint}: ${released.stderr.slice(-2000)}`).toBe('SIGKILL');
      const leftAtCheckIn = await pending();
      expect(await run(args('resume'))).toMatchObject({ code: 0 });
      const after = await current();
      expect(after.password).toBe(leftAtCheckIn);
      expect(after.generation).toBeGreaterThan(onboarded.generation);
      expect(after.statuses).toEqual(['revoked']);
      expect(await logsIn(account, after.password)).toBe(true);
      expect(await logsIn(account, seen)).toBe(false);
      expect(await logsIn(account, initial)).toBe(false);
    },
    180_000,
  );
});
