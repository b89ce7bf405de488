import { spawnSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore } from '../store/index.js';
import { appendAuditEvents, loadOrCreateSigningKey, writeCheckpoint, type VerifyResult } from './index.js';

/** `lapse audit verify` as an operator runs it: a real process on a real data directory. */
const dataDir = mkdtempSync(join(tmpdir(), 'lapse-audit-cli-'));
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

function lapse(...args: string[]) {
  const result = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { encoding: 'utf8', env: { ...process.env, DATABASE_URL: '' } });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

async function withStore(work: (db: Awaited<ReturnType<typeof openStore>>['db']) => Promise<unknown>) {
  const store = await openStore({ dataDir: join(dataDir, 'data') });
  try {
    await work(store.db);
  } finally {
    await store.close();
  }
}

describe('lapse audit verify', { timeout: 60_000 }, () => {
  beforeAll(async () => {
    const key = loadOrCreateSigningKey({ dataDir });
    await withStore(async (db) => {
      await db.transaction().execute((tx) =>
        appendAuditEvents(
          tx,
          Array.from({ length: 1_234 }, (_, i) => ({ action: 'test.event', actor: 'alice', data: { i } })),
        ),
      );
      await writeCheckpoint(db, key);
      await db.transaction().execute((tx) => appendAuditEvents(tx, [{ action: 'test.event', actor: 'bob' }]));
    });
  });

  it('says OK with the counts and the last checkpoint, exit 0, and the result as JSON', () => {
    const run = lapse('audit', 'verify', '--data-dir', dataDir);
    expect(run.stderr).toBe('');
    expect(run.stdout).toMatch(/^audit chain OK: 1,235 events, 1 checkpoint, last checkpoint at seq 1,234 \(\d{4}-\d\d-\d\dT[\d:.]+Z\)\n$/);
    expect(run.code).toBe(0);
    const json = lapse('--json', 'audit', 'verify', '--data-dir', dataDir);
    expect(JSON.parse(json.stdout) as VerifyResult).toMatchObject({ ok: true, events: 1_235, lastSeq: 1_235, checkpoints: 1, problems: [] });
  });

  it('refuses a public key file that is not there, and flags checkpoints another key signed', () => {
    const missing = lapse('audit', 'verify', '--data-dir', dataDir, '--public-key', join(dataDir, 'nope.pem'));
    expect(missing.code).toBe(3);
    expect(missing.stderr).toMatch(/cannot read the audit public key/);
    const other = join(dataDir, 'other.pub.pem');
    writeFileSync(other, generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }));
    const wrong = lapse('audit', 'verify', '--data-dir', dataDir, '--public-key', other);
    expect(wrong.code).toBe(1);
    expect(wrong.stdout).toMatch(/seq 1,234: checkpoint_unverified: checkpoint at seq 1234 is signed by key [0-9a-f]{16}, which was not supplied/);
  });

  it('reports each problem of a tampered log, exit 1', async () => {
    await withStore((db) => sql`UPDATE audit_events SET payload = replace(payload, 'alice', 'mallory') WHERE seq IN (7, 8)`.execute(db));
    const run = lapse('audit', 'verify', '--data-dir', dataDir);
    expect(run.code).toBe(1);
    const [summary, ...problems] = run.stdout.trimEnd().split('\n');
    expect(summary).toMatch(/^audit chain BROKEN: 1,235 events, 1 checkpoint, last checkpoint at seq 1,234 \(.+\); 2 problems$/);
    expect(problems).toEqual([
      '  seq 7: edited: event 7 does not match its hash: it was edited',
      '  seq 8: edited: event 8 does not match its hash: it was edited',
    ]);
  });
});
