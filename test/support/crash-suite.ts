import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FAILPOINTS } from '../../src/engine/index.js';
import type { NoopCall } from '../../src/connectors/index.js';
import { openStore } from '../../src/store/index.js';
import { createServerDatabase, type Backend, type ServerDatabase } from './stores.js';

/**
 * The promise "nothing overdue survives a kill -9": for every step of provision and revoke, a
 * Lapse process is killed right there, a new one starts, and every grant still ends revoked, with
 * the access created once and removed once at the target.
 */
const GRANTS = 3;

function run(args: string[], failpoint?: string): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'test/support/crash-child.ts', ...args], {
      env: { ...process.env, LAPSE_FAILPOINTS: failpoint ?? '' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('exit', (code, signal) => resolve({ code, signal, stderr }));
  });
}

export function crashRecoverySuite(backend: Backend): void {
  describe(`kill -9 recovery [${backend}]`, () => {
    const root = mkdtempSync(join(tmpdir(), 'lapse-crash-'));
    const databases: ServerDatabase[] = [];
    afterAll(async () => {
      for (const database of databases) await database.drop();
      rmSync(root, { recursive: true, force: true });
    });

    it.each(FAILPOINTS)(
      'ends every grant revoked exactly once after a crash at %s',
      async (failpoint) => {
        const dir = mkdtempSync(join(root, 'case-'));
        const callLog = join(dir, 'calls.jsonl');
        const configPath = join(dir, 'lapse.yaml');
        writeFileSync(
          configPath,
          `version: 1
targets:
  crashy:
    connector: noop
    settings: { callLog: "${callLog}" }
    entitlements: { readonly: {} }
policies:
  - { name: all, subjects: { groups: [sre] }, entitlements: ["crashy/*"], duration: { default: 1s, max: 1h }, autoApprove: true }
scheduler: { pollInterval: 100ms, connectorTimeout: 2s, provisionAttempts: 5, revokeBackoff: { min: 50ms, max: 500ms } }
`,
        );
        let where = join(dir, 'data');
        if (backend === 'postgres') {
          const database = await createServerDatabase();
          databases.push(database);
          where = database.url;
        }

        const crashed = await run(['submit', configPath, where, String(GRANTS)], failpoint);
        expect(crashed.signal, `process should have been killed at ${failpoint}: ${crashed.stderr}`).toBe('SIGKILL');
        const resumed = await run(['resume', configPath, where, '0']);
        expect(resumed.code, resumed.stderr).toBe(0);

        const store = await openStore(backend === 'postgres' ? { databaseUrl: where } : { dataDir: where });
        try {
          const grants = await store.db.selectFrom('grants').select(['id', 'status', 'activated_at']).execute();
          expect(grants.length).toBeGreaterThan(0);
          const calls = readFileSync(callLog, 'utf8')
            .trim()
            .split('\n')
            .map((line) => JSON.parse(line) as NoopCall);
          for (const grant of grants) {
            expect(grant.status).toBe('revoked');
            const mine = calls.filter((c) => c.grantId === grant.id);
            // Calls may repeat after a crash (they are idempotent); their effect happens exactly once.
            expect(mine.filter((c) => c.effect === 'created')).toHaveLength(1);
            expect(mine.filter((c) => c.effect === 'removed')).toHaveLength(1);
            expect(mine.findLastIndex((c) => c.op === 'revoke')).toBeGreaterThan(mine.findLastIndex((c) => c.op === 'provision'));
          }
          // Every timer of the grants is done; only the targets' recurring reconciliation remains.
          const pending = await store.db.selectFrom('jobs').select('kind').where('kind', '<>', 'reconcile').execute();
          expect(pending).toEqual([]);
        } finally {
          await store.close();
        }
      },
      90_000,
    );
  });
}
