import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FAILPOINTS } from '../../src/engine/index.js';
import { openStore } from '../../src/store/index.js';
import { noopCrashTarget, type CrashTargets } from './crash-targets.js';
import { createServerDatabase, type Backend, type ServerDatabase } from './stores.js';

/**
 * The promise "nothing overdue survives a kill -9": for every step of provision and revoke, a
 * Lapse process is killed right there, a new one starts, and every grant still ends revoked, with
 * the access created once and removed once at the target. The target is the noop connector by
 * default, or a connector against a fake cloud in this process (crash-targets.ts).
 */
const GRANTS = 3;

function run(
  args: string[],
  env: Readonly<Record<string, string>>,
  failpoint?: string,
): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'test/support/crash-child.ts', ...args], {
      env: { ...process.env, ...env, LAPSE_FAILPOINTS: failpoint ?? '' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('exit', (code, signal) => resolve({ code, signal, stderr }));
  });
}

export function crashRecoverySuite(backend: Backend, targets: CrashTargets = noopCrashTarget): void {
  describe(`kill -9 recovery [${backend}, ${targets.name}]`, () => {
    const root = mkdtempSync(join(tmpdir(), 'lapse-crash-'));
    const databases: ServerDatabase[] = [];
    afterAll(async () => {
      for (const database of databases) await database.drop();
      await targets.close?.();
      rmSync(root, { recursive: true, force: true });
    });

    it.each(FAILPOINTS)(
      'ends every grant revoked exactly once after a crash at %s',
      async (failpoint) => {
        const dir = mkdtempSync(join(root, 'case-'));
        const target = await targets.open(dir);
        const configPath = join(dir, 'lapse.yaml');
        writeFileSync(
          configPath,
          `version: 1
targets:
  crashy:
${target.yaml}
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

        const crashed = await run(['submit', configPath, where, String(GRANTS)], target.env, failpoint);
        expect(crashed.signal, `process should have been killed at ${failpoint}: ${crashed.stderr}`).toBe('SIGKILL');
        const resumed = await run(['resume', configPath, where, '0'], target.env);
        expect(resumed.code, resumed.stderr).toBe(0);

        const store = await openStore(backend === 'postgres' ? { databaseUrl: where } : { dataDir: where });
        try {
          const grants = await store.db.selectFrom('grants').select(['id', 'status', 'activated_at']).execute();
          expect(grants.length).toBeGreaterThan(0);
          for (const grant of grants) {
            expect(grant.status).toBe('revoked');
            // Calls may repeat after a crash (they are idempotent); their effect happens exactly once, removal last.
            expect(target.effects(grant.id), `effects at the target for ${grant.id}`).toEqual(['created', 'removed']);
          }
          expect(target.leftovers()).toEqual([]);
          // Every timer of the grants is done; only the recurring jobs remain (the targets'
          // reconciliation, the anomaly detectors' pass over the audit chain).
          const pending = await store.db.selectFrom('jobs').select('kind').where('kind', 'not in', ['reconcile', 'detect']).execute();
          expect(pending).toEqual([]);
        } finally {
          await store.close();
        }
      },
      // About 12 s on a quiet machine; several times that when the machine is shared.
      240_000,
    );
  });
}
