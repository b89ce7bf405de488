import { spawnSync } from 'node:child_process';
import { generateKeyPairSync, sign } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore } from '../store/index.js';
import { appendAuditEvents, checkpointMessage, loadOrCreateSigningKey, writeCheckpoint, type VerifyResult } from './index.js';

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

  it('--witness: agrees with a witness that saw what the database holds, fails (exit 1) on a checkpoint the database lost', async () => {
    const key = loadOrCreateSigningKey({ dataDir });
    const rows: { seq: string; hash: string; key_id: string; signature: string }[] = [];
    await withStore(async (db) => rows.push(...(await db.selectFrom('audit_checkpoints').selectAll().execute())));
    const line = (seq: number, hash: string, signature: string) =>
      JSON.stringify({ type: 'checkpoint', checkpoint: { seq, hash, keyId: key.keyId, signature, at: '2026-12-07T00:00:00.000Z' } });
    const witness = join(dataDir, 'witness.jsonl');
    writeFileSync(witness, `${line(Number(rows[0]!.seq), rows[0]!.hash, rows[0]!.signature)}\n`);
    const agrees = lapse('audit', 'verify', '--data-dir', dataDir, '--witness', witness);
    expect(agrees.stdout).toContain(`witness ${witness}: OK`);
    expect(agrees.code).toBe(0);
    // The witness also saw a later checkpoint (signed by the real key) that the database no longer has.
    const lost = 'ab'.repeat(32);
    const signature = sign(null, checkpointMessage(1_235, lost), key.privateKey).toString('base64');
    writeFileSync(witness, `${line(Number(rows[0]!.seq), rows[0]!.hash, rows[0]!.signature)}\n${line(1_235, lost, signature)}\n`);
    const disagrees = lapse('audit', 'verify', '--data-dir', dataDir, '--witness', witness);
    expect(disagrees.code).toBe(1);
    expect(disagrees.stdout).toMatch(/^audit chain OK/);
    expect(disagrees.stdout).toContain('seq 1,235: witness_checkpoint_missing: the database has no checkpoint at seq 1235');
    const json = JSON.parse(lapse('--json', 'audit', 'verify', '--data-dir', dataDir, '--witness', witness).stdout) as { ok: boolean; chainOk: boolean };
    expect(json).toMatchObject({ ok: false, chainOk: true });
    expect(lapse('audit', 'verify', '--data-dir', dataDir, '--witness', join(dataDir, 'missing.jsonl')).code).toBe(3);
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
