import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { offline, POSTGRES_ADMIN_URL } from './support/environment.js';

/**
 * Target checks as an operator meets them: `lapse target check`, `lapse config validate
 * --check-targets` and `lapse serve` (at start and on reload), against a real PostgreSQL where
 * Lapse's role lacks pg_signal_backend, and an ssh target whose CA key Lapse generates.
 */
const dir = mkdtempSync(join(tmpdir(), 'lapse-target-check-'));
const suffix = randomBytes(4).toString('hex');
const weak = `lapsetest_tc_${suffix}`;
const reader = `lapsetest_tcr_${suffix}`;
const url = new URL(POSTGRES_ADMIN_URL);
let admin: pg.Client;

const config = (extra = '') => `
version: 1
targets:
  fine:
    connector: noop
    entitlements: { readonly: {} }
  weak-db:
    connector: postgres
    description: Lapse's role lacks pg_signal_backend${extra}
    settings: { host: ${url.hostname}, port: ${Number(url.port || 5432)}, database: ${url.pathname.slice(1)}, user: ${weak} }
    entitlements:
      readonly: { settings: { roles: [${reader}] } }
  hosts:
    connector: ssh
    settings: { caKeyPath: ${join(dir, 'ca', 'lapse-ca')}, krlPath: ${join(dir, 'ca', 'revoked.krl')} }
    entitlements:
      login: { settings: { principals: [deploy] } }
scheduler: { pollInterval: 200ms, connectorTimeout: 5s }
`;
const configPath = join(dir, 'lapse.yaml');

function lapse(...args: string[]) {
  const result = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { encoding: 'utf8', env: { ...process.env, DATABASE_URL: '' } });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe.skipIf(offline())('target checks from the command line and at serve', { timeout: 180_000 }, () => {
  beforeAll(async () => {
    admin = new pg.Client({ connectionString: POSTGRES_ADMIN_URL });
    await admin.connect();
    await admin.query(`CREATE ROLE ${admin.escapeIdentifier(weak)} LOGIN CREATEROLE`);
    await admin.query(`CREATE ROLE ${admin.escapeIdentifier(reader)} NOLOGIN`);
    writeFileSync(configPath, config());
  });
  afterAll(async () => {
    for (const role of [weak, reader]) {
      await admin?.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1`, [role]).catch(() => {});
      await admin?.query(`DROP ROLE IF EXISTS ${admin.escapeIdentifier(role)}`).catch(() => {});
    }
    await admin?.end();
    rmSync(dir, { recursive: true, force: true });
  });

  it('lapse target check names the missing privilege and exits 1; a passing target exits 0', () => {
    const run = lapse('target', 'check', '--config', configPath);
    expect(run.code, run.stderr).toBe(1);
    expect(run.stdout).toMatch(/^ok {6}fine \(noop\)/m);
    expect(run.stdout).toMatch(/^FAILED {2}weak-db \(postgres\): .*lacks: membership in pg_signal_backend/m);
    expect(run.stdout).toMatch(/^ok {6}hosts \(ssh\)/m);
    expect(run.stdout).toContain('1 of 3 target(s) failed');

    const json = lapse('--json', 'target', 'check', 'weak-db', '--config', configPath);
    expect(json.code).toBe(1);
    const report = JSON.parse(json.stdout) as { ok: boolean; targets: { target: string; ok: boolean; code: string; problem: string }[] };
    expect(report.ok).toBe(false);
    expect(report.targets).toEqual([
      expect.objectContaining({ target: 'weak-db', ok: false, code: 'forbidden', problem: expect.stringContaining(`GRANT pg_signal_backend TO "${weak}"`) }),
    ]);

    expect(lapse('target', 'check', 'fine', '--config', configPath).code).toBe(0);
    const unknown = lapse('target', 'check', 'nope', '--config', configPath);
    expect(unknown.code).toBe(3);
    expect(unknown.stderr).toContain('there is no target nope');
    expect(unknown.stderr).toContain('Targets: fine, weak-db, hosts.');
  });

  it('config validate checks targets only when asked, with the same report', () => {
    expect(lapse('config', 'validate', configPath).code).toBe(0);
    const run = lapse('config', 'validate', configPath, '--check-targets');
    expect(run.code).toBe(1);
    expect(run.stdout).toContain(`${configPath} is valid: 3 targets`);
    expect(run.stdout).toMatch(/FAILED {2}weak-db \(postgres\): .*lacks: membership in pg_signal_backend/);
  });

  it('lapse serve starts anyway, writes the ssh CA public key at once, reports checks in /readyz and the log, and re-checks on reload', async () => {
    rmSync(join(dir, 'ca'), { recursive: true, force: true });
    const server = await serve();
    try {
      await until(async () => (await readyz(server.url)).targets['weak-db'] !== 'pending', 30_000);
      const ready = await readyz(server.url);
      expect(ready.status).toBe('ready');
      expect(ready.targets).toEqual({ fine: 'ok', 'weak-db': 'failed', hosts: 'ok' });
      // No certificate was requested: the key pair and the line for TrustedUserCAKeys exist from the start.
      expect(readFileSync(join(dir, 'ca', 'lapse-ca.pub'), 'utf8')).toMatch(/^ssh-ed25519 AAAA\S+ lapse-ca:hosts\n$/);
      const failure = server.log.find((line) => line.includes('target check failed'));
      expect(failure).toMatch(/"target":"weak-db".*pg_signal_backend/);
      expect(JSON.stringify(ready)).not.toContain('pg_signal_backend');

      // The DBA fixes the role; a config change (here: a new description) makes serve re-check.
      await admin.query(`GRANT pg_signal_backend TO ${admin.escapeIdentifier(weak)}`);
      writeFileSync(configPath, config(' (fixed)'));
      await until(async () => (await readyz(server.url)).targets['weak-db'] === 'ok', 30_000);
    } finally {
      server.process.kill('SIGTERM');
      await new Promise((resolve) => server.process.once('exit', resolve));
    }
    expect(existsSync(join(dir, 'ca', 'lapse-ca'))).toBe(true);
  });
});

async function readyz(base: string) {
  const response = await fetch(`${base}/readyz`);
  return (await response.json()) as { status: string; targets: Record<string, string> };
}

async function until(check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function serve(): Promise<{ url: string; process: ChildProcess; log: string[] }> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', 'src/cli/main.ts', 'serve', '--config', configPath, '--data-dir', join(dir, 'data'), '--port', '0'],
    {
      env: { PATH: process.env.PATH, HOME: dir },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const log: string[] = [];
  child.stderr!.on('data', (chunk: Buffer) => log.push(chunk.toString()));
  const lines = createInterface({ input: child.stdout! });
  const url = await new Promise<string>((resolve, reject) => {
    lines.on('line', (line) => {
      log.push(line);
      const entry = JSON.parse(line) as { msg?: string; address?: string };
      if (entry.msg === 'lapse is running' && entry.address) resolve(entry.address);
    });
    child.once('exit', (code) => reject(new Error(`lapse serve exited with ${code}:\n${log.join('\n')}`)));
  });
  return { url, process: child, log };
}
