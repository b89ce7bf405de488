import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { checkLocalPassword } from '../src/auth/index.js';
import { openStore } from '../src/store/index.js';

const dir = mkdtempSync(join(tmpdir(), 'lapse-admin-users-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const dataDir = join(dir, 'data');

function lapse(args: string[], stdin = '') {
  const run = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args, '--config', 'examples/lapse.yaml', '--data-dir', dataDir], {
    input: stdin,
    encoding: 'utf8',
    env: { ...process.env, DATABASE_URL: '' },
  });
  return { code: run.status, stdout: run.stdout, stderr: run.stderr };
}

async function passwordWorks(name: string, password: string): Promise<boolean> {
  const store = await openStore({ dataDir: join(dataDir, 'data') });
  try {
    await checkLocalPassword(store.db, { username: name, password, ip: '127.0.0.1' }, { perAccountPerHour: 100, perIpPerMinute: 100 });
    return true;
  } catch {
    return false;
  } finally {
    await store.close();
  }
}

describe('lapse admin user create --password-stdin / set-password', { timeout: 120_000 }, () => {
  it('refuses a short password before touching the database', () => {
    const run = lapse(['--json', 'admin', 'user', 'create', 'alice', '--password-stdin'], 'too short\n');
    expect(run.code).toBe(2);
    expect(JSON.parse(run.stderr).error).toMatchObject({ code: 'validation_failed', where: '--password-stdin' });
  });

  it('creates a user with a password read from stdin, and replaces it with set-password', async () => {
    const created = lapse(['--json', 'admin', 'user', 'create', 'alice', '--group', 'sre', '--password-stdin'], 'the first long password\n');
    expect(created.code, created.stderr).toBe(0);
    expect(JSON.parse(created.stdout)).toMatchObject({ name: 'alice', groups: ['sre'], hasPassword: true });
    expect(created.stdout).not.toContain('the first long password');
    expect(await passwordWorks('alice', 'the first long password')).toBe(true);
    const changed = lapse(['--json', 'admin', 'user', 'set-password', 'alice', '--password-stdin'], 'the second long password');
    expect(changed.code, changed.stderr).toBe(0);
    expect(await passwordWorks('alice', 'the first long password')).toBe(false);
    expect(await passwordWorks('alice', 'the second long password')).toBe(true);
  });

  it('refuses set-password for an unknown user (exit 3) and for a service identity', () => {
    expect(lapse(['admin', 'user', 'set-password', 'nobody', '--password-stdin'], 'a long enough password').code).toBe(3);
    expect(lapse(['admin', 'user', 'create', 'ci-bot', '--service']).code).toBe(0);
    const run = lapse(['admin', 'user', 'set-password', 'ci-bot', '--password-stdin'], 'a long enough password');
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/service identity/);
  });
});
