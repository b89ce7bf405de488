import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, describe, expect, it } from 'vitest';
import { SHUTDOWN_LIMIT_MS } from '../src/cli/commands/serve.js';
import { openEventStream, within } from './support/event-stream.js';

/**
 * `lapse serve` stops on SIGTERM within its documented bound while a portal tab holds an event
 * stream open and a client is stuck mid-request (issue 9 item 13): the real command, its own process.
 */
const dir = mkdtempSync(join(tmpdir(), 'lapse-shutdown-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const env = { PATH: process.env.PATH, HOME: dir, USER: 'tester' };
const location = ['--config', 'examples/lapse.yaml', '--data-dir', join(dir, 'data')];

function lapse(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

async function serve(): Promise<{ url: string; child: ChildProcess; log: string[]; exited: Promise<number | null> }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'serve', ...location, '--port', '0'], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const log: string[] = [];
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  child.stderr!.on('data', (chunk: Buffer) => log.push(chunk.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      log.push(line);
      const entry = JSON.parse(line) as { msg?: string; address?: string };
      if (entry.msg === 'lapse is running' && entry.address) resolve(entry.address);
    });
    void exited.then((code) => reject(new Error(`lapse serve exited with ${code}:\n${log.join('\n')}`)));
  });
  return { url, child, log, exited };
}

describe('lapse serve shutdown', { timeout: 180_000 }, () => {
  it('exits on SIGTERM within its bound while an event stream is open and a request is stuck, ending the stream', async () => {
    expect((await lapse(['admin', 'user', 'create', 'alice', '--group', 'sre', ...location])).code).toBe(0);
    const created = await lapse(['--json', 'admin', 'token', 'create', '--user', 'alice', '--scope', 'read', ...location]);
    expect(created.code, created.stderr).toBe(0);
    const { token } = JSON.parse(created.stdout) as { token: string };

    const server = await serve();
    try {
      const stream = await openEventStream(`${server.url}/api/v1/events`, { authorization: `Bearer ${token}` });
      expect(stream.status).toBe(200);
      await stream.waitFor(/: connected/);
      // a client that sent half a request and went quiet
      const { port, hostname } = new URL(server.url);
      const stuck = connect(Number(port), hostname);
      await new Promise<void>((resolve) => stuck.once('connect', () => resolve()));
      stuck.write(
        `POST /api/v1/requests HTTP/1.1\r\nhost: ${hostname}\r\nauthorization: Bearer ${token}\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{"target":`,
      );
      stuck.on('error', () => undefined);

      server.child.kill('SIGTERM');
      const took = await within(server.exited, SHUTDOWN_LIMIT_MS + 5_000, 'lapse serve exiting after SIGTERM');
      expect(await server.exited, server.log.join('\n')).toBe(0);
      expect(took).toBeLessThan(SHUTDOWN_LIMIT_MS);
      await within(stream.ended, 1_000, 'the event stream ending');
      expect(stream.text()).toMatch(/event: closed\ndata: \{"reason":"shutdown"\}/);
      stuck.destroy();
    } finally {
      if (server.child.exitCode === null) server.child.kill('SIGKILL');
    }
  });
});
