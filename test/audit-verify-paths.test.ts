import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

/**
 * The audit chain verified three ways on one real install with the default signing key (generated
 * in the data directory): the API (the portal's button), and `lapse audit verify`. One answer.
 */
const dir = mkdtempSync(join(tmpdir(), 'lapse-verify-paths-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const dataDir = join(dir, 'state');
const config = join(dir, 'lapse.yaml');
const env = { ...process.env, DATABASE_URL: '', LAPSE_DATA_DIR: '', LAPSE_LOG_LEVEL: 'info' };

function lapse(...args: string[]) {
  const result = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { encoding: 'utf8', env });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('audit verification paths', { timeout: 120_000 }, () => {
  it('gives the same verdict from POST /api/v1/audit/verify and `lapse audit verify` with the default key', async () => {
    // Checkpoints every second, so the running server has signed some before it is asked.
    writeFileSync(config, readFileSync('examples/lapse.yaml', 'utf8').replace('checkpointInterval: 1m', 'checkpointInterval: 1s'));
    expect(lapse('admin', 'user', 'create', 'root', '--group', 'admins', '--config', config, '--data-dir', dataDir).code).toBe(0);
    const issued = lapse('--json', 'admin', 'token', 'create', '--user', 'root', '--scope', 'admin', '--config', config, '--data-dir', dataDir);
    expect(issued.code).toBe(0);
    const { token } = JSON.parse(issued.stdout) as { token: string };

    const port = await freePort();
    const server = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'serve', '--config', config, '--data-dir', dataDir, '--port', String(port)], {
      env,
    });
    let log = '';
    server.stdout.on('data', (chunk: Buffer) => (log += chunk.toString()));
    server.stderr.on('data', (chunk: Buffer) => (log += chunk.toString()));
    let api: { ok: boolean; checkpoints: number; checkpointKeyKnown: boolean; problems: unknown[] } | undefined;
    try {
      const deadline = Date.now() + 90_000;
      for (;;) {
        if (Date.now() > deadline) throw new Error(`no verification with a checkpoint within 90 s:\n${log}`);
        const answer = await fetch(`http://127.0.0.1:${port}/api/v1/audit/verify`, { method: 'POST', headers: { authorization: `Bearer ${token}` } }).catch(
          () => null,
        );
        if (answer?.status === 200) {
          api = (await answer.json()) as typeof api;
          if (api!.checkpoints > 0) break;
        }
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
    } finally {
      server.kill('SIGTERM');
      await new Promise((resolve) => server.once('exit', resolve));
    }
    expect(api).toMatchObject({ ok: true, problems: [], checkpointKeyKnown: true });

    const cli = lapse('--json', 'audit', 'verify', '--data-dir', dataDir);
    expect(cli.stderr).toBe('');
    expect(cli.code).toBe(0);
    expect(JSON.parse(cli.stdout)).toMatchObject({ ok: true, problems: [] });
  });
});
