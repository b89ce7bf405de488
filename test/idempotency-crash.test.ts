import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, describe, expect, it } from 'vitest';
import { IDEMPOTENCY_FAILPOINTS } from '../src/engine/index.js';
import { openStore } from '../src/store/index.js';
import { backends, createServerDatabase, type ServerDatabase } from './support/stores.js';

/**
 * Issue 9, item 2: an Idempotency-Key must never be stuck after a crash. The API server is killed
 * (kill -9) at each step of an idempotent POST; the client retries the same request with the same
 * key against a restarted server and gets either the stored result or the request run, so that
 * exactly one request exists in the end.
 */
const CONFIG = `version: 1
targets:
  db:
    connector: noop
    entitlements: { readonly: {} }
policies:
  - { name: all, subjects: { groups: [sre] }, entitlements: ["db/*"], duration: { default: 1h, max: 8h }, autoApprove: true }
scheduler: { pollInterval: 100ms, connectorTimeout: 2s }
`;

interface Server {
  readonly url: string;
  readonly token: string;
  readonly child: ChildProcess;
  readonly exited: Promise<NodeJS.Signals | number | null>;
}

async function startServer(configPath: string, where: string, failpoint = ''): Promise<Server> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/support/api-crash-child.ts', configPath, where], {
    env: { ...process.env, LAPSE_FAILPOINTS: failpoint },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<NodeJS.Signals | number | null>((resolve) => child.once('exit', (code, signal) => resolve(signal ?? code)));
  const first = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', resolve);
    void exited.then((how) => reject(new Error(`server exited (${how}) before listening: ${stderr}`)));
  });
  const { url, token } = JSON.parse(first) as { url: string; token: string };
  return { url, token, child, exited };
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- API response, checked field by field
async function post(server: Server, key: string, body: unknown): Promise<{ status: number; replayed: boolean; json: Record<string, any> } | Error> {
  try {
    const response = await fetch(`${server.url}/api/v1/requests`, {
      method: 'POST',
      headers: { authorization: `Bearer ${server.token}`, 'content-type': 'application/json', 'idempotency-key': key },
      body: JSON.stringify(body),
    });
    return { status: response.status, replayed: response.headers.get('idempotent-replayed') === 'true', json: (await response.json()) as Record<string, any> }; // eslint-disable-line @typescript-eslint/no-explicit-any -- as above
  } catch (error) {
    return error as Error;
  }
}

describe.each(backends())('Idempotency-Key after a kill -9 [%s]', (backend) => {
  const root = mkdtempSync(join(tmpdir(), 'lapse-idem-crash-'));
  const databases: ServerDatabase[] = [];
  afterAll(async () => {
    for (const database of databases) await database.drop();
    rmSync(root, { recursive: true, force: true });
  });

  it.each(IDEMPOTENCY_FAILPOINTS)(
    'a retry after a crash at %s gets the result or runs the request, exactly once',
    async (failpoint) => {
      const dir = mkdtempSync(join(root, 'case-'));
      const configPath = join(dir, 'lapse.yaml');
      writeFileSync(configPath, CONFIG);
      let where = join(dir, 'data');
      if (backend === 'postgres') {
        const database = await createServerDatabase();
        databases.push(database);
        where = database.url;
      }
      const key = `crash-${failpoint}`;
      const body = { target: 'db', entitlement: 'readonly', duration: '30m', reason: `crash at ${failpoint}` };

      const crashing = await startServer(configPath, where, failpoint);
      const lost = await post(crashing, key, body);
      expect(lost, 'the response is lost with the process').toBeInstanceOf(Error);
      expect(await crashing.exited).toBe('SIGKILL');

      const restarted = await startServer(configPath, where);
      try {
        const retried = await post(restarted, key, body);
        if (retried instanceof Error) throw retried;
        expect(retried.status, JSON.stringify(retried.json)).toBe(201);
        // Committed before the crash: the stored result; otherwise the request runs now.
        expect(retried.replayed).toBe(failpoint === 'idempotency:after-commit');
        // Once more: the stored result, the same request.
        const again = await post(restarted, key, body);
        if (again instanceof Error) throw again;
        expect(again).toMatchObject({ status: 201, replayed: true });
        expect(again.json.request.id).toBe(retried.json.request.id);
        // A different request under the same key is still refused.
        const other = await post(restarted, key, { ...body, reason: 'something else' });
        if (other instanceof Error) throw other;
        expect(other.status).toBe(409);
      } finally {
        restarted.child.kill('SIGTERM');
        await restarted.exited;
      }

      const store = await openStore(backend === 'postgres' ? { databaseUrl: where } : { dataDir: where });
      try {
        const requests = await store.db.selectFrom('requests').select('id').where('reason', '=', body.reason).execute();
        expect(requests, 'exactly one request was made').toHaveLength(1);
      } finally {
        await store.close();
      }
    },
    90_000,
  );
});
