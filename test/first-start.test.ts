import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const dir = mkdtempSync(join(tmpdir(), 'lapse-first-start-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function until(condition: () => boolean, timeoutMs: number, explain: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(explain());
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('lapse serve on a fresh install', { timeout: 120_000 }, () => {
  it('prints a one-time setup link that creates the first admin (no default password)', async () => {
    const port = await freePort();
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', 'src/cli/main.ts', 'serve', '--config', 'examples/lapse.yaml', '--data-dir', join(dir, 'data'), '--port', String(port)],
      {
        env: { ...process.env, DATABASE_URL: '', LAPSE_LOG_LEVEL: 'warn' },
      },
    );
    let stderr = '';
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    const link = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no setup link within 90 s:\n${stderr}`)), 90_000);
      child.stderr.on('data', (chunk: Buffer) => {
        stderr += chunk.toString();
        const match = /(http:\/\/127\.0\.0\.1:\d+\/setup\?token=[A-Za-z0-9_-]{43})/.exec(stderr);
        if (match) {
          clearTimeout(timer);
          resolve(match[1]!);
        }
      });
      child.on('exit', (code) => reject(new Error(`lapse serve exited (${code}):\n${stderr}`)));
    });
    try {
      expect(stderr).toContain('The first admin is put in the group "admins"');
      const token = new URL(link).searchParams.get('token')!;
      // The JSON log (stdout, shipped to log stores) says a link was printed, never the link itself.
      // stdout and stderr are separate pipes: the log line may arrive after the link.
      await until(
        () => stdout.includes('a one-time setup link was printed to the terminal'),
        10_000,
        () => `no log line about the link; stdout:\n${stdout}`,
      );
      expect(stdout).not.toContain(token);
      const page = await fetch(link);
      expect(page.status).toBe(200);
      expect(await page.text()).toContain('Create the first admin');
      const res = await fetch(`http://127.0.0.1:${port}/api/v1/setup`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ token, username: 'root', password: 'a long first password' }),
      });
      expect(res.status).toBe(201);
      const login = await fetch(`http://127.0.0.1:${port}/api/v1/auth/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ username: 'root', password: 'a long first password' }),
      });
      expect(login.status).toBe(200);
      const again = await fetch(`http://127.0.0.1:${port}/api/v1/setup`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ token, username: 'root2', password: 'a long first password' }),
      });
      expect(again.status).toBe(401);
    } finally {
      child.kill('SIGTERM');
      await new Promise((resolve) => child.once('exit', resolve));
    }
  });
});
