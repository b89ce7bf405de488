import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminSocketPath } from '../src/store/admin-socket.js';

/**
 * Issue 16: on the embedded database, `lapse admin …`, `token create`, `audit verify` and
 * `reconcile` work from a second shell while `lapse serve` runs (through its admin socket), and
 * nobody but the server's OS user can use that socket. Real processes throughout.
 */
const dir = mkdtempSync(join(tmpdir(), 'lapse-admin-socket-e2e-'));
const dataDir = join(dir, 'data');
const env = { PATH: process.env.PATH, HOME: dir, USER: 'operator' };
const location = ['--config', 'examples/lapse.yaml', '--data-dir', dataDir];

function lapse(args: string[], input = ''): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(input);
  });
}

describe('admin commands while lapse serve runs on the embedded database', { timeout: 180_000 }, () => {
  let server: ChildProcess;
  let url = '';

  beforeAll(async () => {
    server = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'serve', ...location, '--port', '0'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    const log: string[] = [];
    server.stderr!.on('data', (chunk: Buffer) => log.push(chunk.toString()));
    url = await new Promise<string>((resolve, reject) => {
      createInterface({ input: server.stdout! }).on('line', (line) => {
        log.push(line);
        const entry = JSON.parse(line) as { msg?: string; address?: string };
        if (entry.msg === 'lapse is running' && entry.address) resolve(entry.address);
      });
      server.once('exit', (code) => reject(new Error(`lapse serve exited with ${code}:\n${log.join('\n')}`)));
    });
  });

  afterAll(async () => {
    if (server.exitCode === null) {
      const exited = new Promise((resolve) => server.once('exit', resolve));
      server.kill('SIGTERM');
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it('creates a user and a token the running server accepts at once', async () => {
    const created = await lapse(['admin', 'user', 'create', 'dana', '--group', 'sre', '--password-stdin', ...location], 'a long enough password\n');
    expect(created.code, created.stderr).toBe(0);
    expect(created.stdout).toMatch(/created user dana/);
    const token = await lapse(['--json', 'admin', 'token', 'create', '--user', 'dana', '--scope', 'read', ...location]);
    expect(token.code, token.stderr).toBe(0);
    const { token: secret } = JSON.parse(token.stdout) as { token: string };
    const whoami = await fetch(`${url}/api/v1/auth/session`, { headers: { authorization: `Bearer ${secret}` } });
    expect(whoami.status).toBe(200);
    expect(await whoami.json()).toMatchObject({ principal: { id: 'dana' }, via: 'token' });
    // Deprovisioning from the second shell ends the token at once.
    const disabled = await lapse(['admin', 'user', 'disable', 'dana', '--reason', 'left the company', ...location]);
    expect(disabled.code, disabled.stderr).toBe(0);
    expect((await fetch(`${url}/api/v1/auth/session`, { headers: { authorization: `Bearer ${secret}` } })).status).toBe(401);
    // Refusals come back as they would offline, with nothing written.
    const again = await lapse(['admin', 'user', 'create', 'dana', ...location]);
    expect(again.code).toBe(4);
    expect(again.stderr).toMatch(/already exists/);
  });

  it('verifies the audit chain and reconciles the targets', async () => {
    const verified = await lapse(['audit', 'verify', ...location]);
    expect(verified.code, verified.stderr).toBe(0);
    expect(verified.stdout).toMatch(/audit chain OK/);
    const reconciled = await lapse(['reconcile', ...location]);
    expect(reconciled.code, reconciled.stderr).toBe(0);
    expect(reconciled.stdout).toMatch(/prod-db: \d+ listed/);
  });

  it('is refused to another OS user, even when the data directory is open to them', () => {
    if (process.getuid?.() !== 0) throw new Error('this test switches to the user nobody and must run as root (CI does)');
    chmodSync(dir, 0o755);
    chmodSync(dataDir, 0o755);
    const probe = `require('node:net').createConnection(${JSON.stringify(adminSocketPath(dataDir))}).on('connect', () => { console.log('connected'); process.exit(0); }).on('error', (e) => { console.log(e.code); process.exit(1); })`;
    const result = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '-e', probe], {
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(result.stdout.trim()).toBe('EACCES');
  });

  it('leaves the server serving, and a second server is still refused the data directory', async () => {
    expect((await fetch(`${url}/readyz`)).status).toBe(200);
    const second = await lapse(['serve', ...location, '--port', '0']);
    expect(second.code).toBe(5);
    expect(second.stderr).toMatch(/in use by process/);
  });
});
