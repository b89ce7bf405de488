import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it, vi } from 'vitest';
import { appendAuditEvents, checkExportAgainst, loadOrCreateSigningKey, readExportCopy, writeCheckpoint } from '../src/audit/index.js';
import { AuditExporter } from '../src/audit/exporter.js';
import { openStore } from '../src/store/index.js';

const dir = mkdtempSync(join(tmpdir(), 'lapse-export-crash-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

it('kill -9 during export loses nothing: the next exporter goes on from the cursor and the copy verifies', { timeout: 120_000 }, async () => {
  const dataDir = join(dir, 'data');
  const path = join(dir, 'export.jsonl');
  const key = loadOrCreateSigningKey({ dataDir: join(dir, 'key') });
  const count = 5_000;
  let store = await openStore({ dataDir });
  await store.db.transaction().execute((tx) =>
    appendAuditEvents(
      tx,
      Array.from({ length: count }, (_, i) => ({ action: 'grant.activated', actor: 'system', data: { i } })),
    ),
  );
  await writeCheckpoint(store.db, key);
  await store.close();

  const child = spawn(process.execPath, ['--import', 'tsx', 'test/support/audit-export-crash-child.ts', dataDir, path], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await vi.waitFor(() => expect(existsSync(path) && readFileSync(path, 'utf8').split('\n').length > 200).toBe(true), { timeout: 60_000, interval: 5 });
  child.kill('SIGKILL');
  await new Promise((resolve) => child.once('exit', resolve));
  const before = readFileSync(path, 'utf8').trim().split('\n').length;
  expect(before).toBeLessThan(count);

  store = await openStore({ dataDir });
  try {
    // The dead exporter's lease must lapse first (it held the cursor); a new start waits it out.
    await store.db
      .updateTable('audit_export_cursors')
      .set({ lease_until: new Date(0) })
      .execute();
    const exporter = new AuditExporter(
      store.db,
      {
        sinks: [{ name: 'crash', format: 'jsonl', transport: { type: 'file', path, maxBytes: 1 << 30, keep: 1 }, batchSize: 500, checkpoints: true }],
        witnesses: [],
        pollIntervalMs: 10,
        timeoutMs: 5_000,
        backoffMinMs: 10,
        backoffMaxMs: 100,
      },
      { hostname: 'crash', productVersion: '0', onError: () => {} },
    );
    await exporter.exportOnce();
    await exporter.stop();
    const seqs = readFileSync(path, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { type: string; seq?: number })
      .filter((r) => r.type === 'event')
      .map((r) => r.seq!);
    // Every event at least once, in order apart from a repeated last batch.
    expect(new Set(seqs).size).toBe(count);
    expect(seqs.length - count).toBeLessThanOrEqual(50);
    const proof = await checkExportAgainst(store.db, await readExportCopy(path), [key.publicKey]);
    expect(proof).toMatchObject({ first: 1, last: count, provenThrough: count, problems: [] });
  } finally {
    await store.close();
  }
});
