import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeEach, expect, it, vi } from 'vitest';
import { describeEachStore } from '../../test/support/stores.js';
import type { AuditExportSettings } from '../domain/audit-export.js';
import { listExportCursors } from '../store/index.js';
import { appendAuditEvents, chainHash, GENESIS_HASH, loadOrCreateSigningKey, writeCheckpoint } from './index.js';
import { AuditExporter } from './exporter.js';
import { FileTransport, type AuditTransport, type ExportRecord } from './export-transports.js';

const dir = mkdtempSync(join(tmpdir(), 'lapse-exporter-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let run = 0;

/** A transport that records what arrived and fails while `down` is set. */
class FlakyTransport implements AuditTransport {
  down = false;
  received: ExportRecord[] = [];
  async send(records: readonly ExportRecord[]): Promise<void> {
    if (this.down) throw new Error('connection refused by the receiver');
    this.received.push(...records);
  }
  async close(): Promise<void> {}
}

const settings = (over: Partial<AuditExportSettings> = {}): AuditExportSettings => ({
  sinks: [
    {
      name: 'siem',
      format: 'jsonl',
      transport: { type: 'file', path: join(dir, `unused-${run}.jsonl`), maxBytes: 1 << 20, keep: 2 },
      batchSize: 4,
      checkpoints: true,
    },
  ],
  witnesses: [],
  pollIntervalMs: 20,
  timeoutMs: 5_000,
  backoffMinMs: 20,
  backoffMaxMs: 100,
  ...over,
});

describeEachStore('audit exporter', ({ store }) => {
  const db = () => store().db;
  const key = loadOrCreateSigningKey({ dataDir: join(dir, 'key') });
  const append = (n: number) =>
    db()
      .transaction()
      .execute((tx) =>
        appendAuditEvents(
          tx,
          Array.from({ length: n }, (_, i) => ({ action: 'test.event', actor: 'alice', data: { i } })),
        ),
      );
  const options = (transport: AuditTransport) => ({ hostname: 'h', productVersion: '0', onError: vi.fn(), transport: () => transport });

  beforeEach(async () => {
    run += 1;
    await sql`TRUNCATE audit_events, audit_checkpoints, audit_export_cursors`.execute(db());
    await sql`UPDATE audit_head SET seq = 0, hash = repeat('0', 64)`.execute(db());
  });

  it('sends every event once, in order, with seq and hash, then the checkpoints, and keeps its cursor', async () => {
    const transport = new FlakyTransport();
    const exporter = new AuditExporter(db(), settings(), options(transport));
    await append(10);
    await writeCheckpoint(db(), key);
    expect(await exporter.exportOnce()).toBe(11);
    expect(transport.received.filter((r) => r.kind === 'event').map((r) => r.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(transport.received.filter((r) => r.kind === 'checkpoint').map((r) => r.seq)).toEqual([10]);
    // The chain can be recomputed from what arrived.
    let prev = GENESIS_HASH;
    for (const record of transport.received.filter((r) => r.kind === 'event')) {
      const line = JSON.parse(record.line) as { hash: string; prev_hash: string; seq: number };
      const payload = record.line.slice(record.line.indexOf('"event":') + 8, -1);
      expect(line.prev_hash).toBe(prev);
      expect(chainHash(prev, payload)).toBe(line.hash);
      prev = line.hash;
    }
    expect(await exporter.exportOnce()).toBe(0);
    const cursors = await listExportCursors(db());
    expect(cursors.find((c) => c.name === 'sink:siem')).toMatchObject({ seq: 10, exportedTotal: 10, failures: 0 });
    expect(cursors.find((c) => c.name === 'sink-checkpoints:siem')).toMatchObject({ seq: 10 });
    // A new exporter (a restart) goes on from the cursor.
    await exporter.stop();
    await append(2);
    const after = new FlakyTransport();
    expect(await new AuditExporter(db(), settings(), options(after)).exportOnce()).toBe(2);
    expect(after.received.map((r) => r.seq)).toEqual([11, 12]);
  });

  it('a sink that is down keeps its cursor and error, is retried, and catches up in order; appends never wait for it', async () => {
    const transport = new FlakyTransport();
    transport.down = true;
    const exporter = new AuditExporter(db(), settings(), options(transport));
    exporter.start();
    try {
      const started = Date.now();
      await append(6);
      expect(Date.now() - started).toBeLessThan(5_000);
      await vi.waitFor(async () => expect((await listExportCursors(db())).find((c) => c.name === 'sink:siem')?.failures).toBeGreaterThan(1), {
        timeout: 5_000,
        interval: 20,
      });
      const down = (await listExportCursors(db())).find((c) => c.name === 'sink:siem')!;
      expect(down).toMatchObject({ seq: 0, lastError: 'connection refused by the receiver' });
      transport.down = false;
      await vi.waitFor(() => expect(transport.received.map((r) => r.seq)).toEqual([1, 2, 3, 4, 5, 6]), { timeout: 5_000, interval: 20 });
    } finally {
      await exporter.stop();
    }
  });

  it('one exporter at a time holds a sink (replicas): the other skips it while the lease lasts', async () => {
    const first = new FlakyTransport();
    const second = new FlakyTransport();
    await append(3);
    const a = new AuditExporter(db(), settings(), options(first));
    const b = new AuditExporter(db(), settings(), options(second));
    await a.exportOnce();
    await append(2);
    expect(await b.exportOnce()).toBe(0);
    await a.stop();
    expect(await b.exportOnce()).toBe(2);
    expect([...first.received, ...second.received].filter((r) => r.kind === 'event').map((r) => r.seq)).toEqual([1, 2, 3, 4, 5]);
  });

  it('refuses to go on when the chain was cut back and rewritten after export', async () => {
    const transport = new FlakyTransport();
    const exporter = new AuditExporter(db(), settings(), options(transport));
    await append(5);
    await exporter.exportOnce();
    // Someone deletes the tail and appends other events in its place, with valid hashes.
    await sql`DELETE FROM audit_events WHERE seq > 3`.execute(db());
    const { rows } = await sql<{ hash: string }>`SELECT hash FROM audit_events WHERE seq = 3`.execute(db());
    await sql`UPDATE audit_head SET seq = 3, hash = ${rows[0]!.hash}`.execute(db());
    await append(4);
    await expect(exporter.exportOnce()).rejects.toThrow(/no longer continues from the last exported event \(seq 5/);
    expect(transport.received.filter((r) => r.kind === 'event')).toHaveLength(5);
    expect((await listExportCursors(db())).find((c) => c.name === 'sink:siem')?.lastError).toMatch(/removed or rewritten/);
  });

  it('writes to a rotated local file', async () => {
    const path = join(dir, `rotated-${run}.jsonl`);
    const file = new FileTransport({ type: 'file', path, maxBytes: 2_000, keep: 2 });
    await append(12);
    await new AuditExporter(db(), settings(), { ...options(file) }).exportOnce();
    const lines = [`${path}.2`, `${path}.1`, path].flatMap((p) => readFileSync(p, 'utf8').trim().split('\n'));
    expect(lines.map((l) => (JSON.parse(l) as { seq: number }).seq)).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
    for (const p of [path, `${path}.1`, `${path}.2`]) expect(readFileSync(p).length).toBeLessThanOrEqual(2_000);
  });
});
