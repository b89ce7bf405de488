import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildApiServer, type ApiServer } from '../../src/api/index.js';
import { createUser, issueApiToken, type TokenScope } from '../../src/auth/index.js';
import type { Store } from '../../src/store/index.js';
import { startEngine, type TestEngine } from './engine.js';
import { openPgliteStore } from './stores.js';
import { authFor } from './auth-service.js';

/**
 * A real Lapse API server on 127.0.0.1 (PGlite, TEST_CONFIG or the yaml given) with the test cast
 * as local users, and the real `lapse` command run as a child process against it.
 */
export interface LapseServer {
  readonly url: string;
  readonly engine: TestEngine;
  readonly store: Store;
  readonly app: ApiServer;
  /** A fresh API token for one of the cast (alice, bob, carol, mallory, root, auditor). */
  token(user: string, scopes?: TokenScope[]): Promise<string>;
  close(): Promise<void>;
}

export const CAST: Record<string, string[]> = {
  alice: ['sre', 'oncall'],
  bob: ['sre-leads'],
  carol: ['security'],
  mallory: ['contractors'],
  root: ['admins'],
  auditor: [],
};

export async function startLapseServer(options: { yaml?: string } = {}): Promise<LapseServer> {
  const store = await openPgliteStore();
  const engine = await startEngine(store, options.yaml ? { yaml: options.yaml } : {});
  const app = await buildApiServer({ engine: engine.engine, auth: authFor(engine.engine), version: 'test' });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  if (!address || typeof address === 'string') throw new Error('the test server has no TCP address');
  const ids: Record<string, string> = {};
  const now = new Date();
  for (const [name, groups] of Object.entries(CAST)) ids[name] = (await createUser(store.db, { name, groups }, now)).id;
  return {
    url: `http://127.0.0.1:${address.port}`,
    engine,
    store,
    app,
    token: async (user, scopes = ['read', 'request', 'approve']) => {
      const userId = ids[user];
      if (!userId) throw new Error(`no test user ${user}`);
      return (await issueApiToken(store.db, { userId, name: 'cli-test', scopes, expiresInMs: 3_600_000 }, new Date())).token;
    },
    close: async () => {
      await app.close();
      await engine.stop();
      await store.close();
    },
  };
}

export interface CliRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** A home for one test file: an empty config dir, so no saved sign-in of the machine leaks in. */
export function cliHome(): { dir: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'lapse-cli-home-'));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * Runs `lapse ...` as a user would: a separate process (asynchronously, so the in-process server
 * keeps answering), with only the environment given plus PATH.
 */
export function runLapse(args: readonly string[], env: Record<string, string | undefined>, input?: string): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
      env: { PATH: process.env.PATH, HOME: env.HOME ?? tmpdir(), ...env } as NodeJS.ProcessEnv,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(input ?? '');
  });
}
