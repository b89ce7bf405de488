import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const dir = mkdtempSync(join(tmpdir(), 'lapse-admin-identity-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const dataDir = join(dir, 'data');

function lapse(args: string[]) {
  const run = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args, '--config', 'examples/lapse.yaml', '--data-dir', dataDir], {
    encoding: 'utf8',
    env: { ...process.env, DATABASE_URL: '' },
  });
  return { code: run.status, stdout: run.stdout, stderr: run.stderr };
}

describe('lapse admin user disable|enable, scim-token create|revoke', { timeout: 400_000 }, () => {
  it('disables and re-enables a person, and refuses an unknown one (exit 3)', () => {
    expect(lapse(['admin', 'user', 'create', 'dana']).code).toBe(0);
    expect(lapse(['admin', 'token', 'create', '--user', 'dana', '--scope', 'read']).code).toBe(0);
    const disabled = lapse(['--json', 'admin', 'user', 'disable', 'dana', '--reason', 'left the company']);
    expect(disabled.code, disabled.stderr).toBe(0);
    expect(JSON.parse(disabled.stdout)).toMatchObject({ changed: true, apiAccessRevoked: 1, user: { name: 'dana' } });
    const enabled = lapse(['--json', 'admin', 'user', 'enable', 'dana']);
    expect(JSON.parse(enabled.stdout)).toMatchObject({ changed: true });
    expect(lapse(['admin', 'user', 'disable', 'nobody']).code).toBe(3);
  });

  it('creates a SCIM token shown once, and revokes it', () => {
    const created = lapse(['--json', 'admin', 'scim-token', 'create', '--name', 'okta']);
    expect(created.code, created.stderr).toBe(0);
    const { id, token } = JSON.parse(created.stdout) as { id: string; token: string };
    expect(token).toMatch(/^lapse_scim_[A-Za-z0-9_-]{43}$/);
    expect(lapse(['admin', 'scim-token', 'revoke', id]).code).toBe(0);
    expect(lapse(['admin', 'scim-token', 'revoke', id]).code).toBe(3);
  });
});
