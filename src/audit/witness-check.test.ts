import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeEach, expect, it, vi } from 'vitest';
import { describeEachStore } from '../../test/support/stores.js';
import { appendAuditEvents, loadOrCreateSigningKey, verifyAuditChain, writeCheckpoint } from './index.js';
import { AuditExporter } from './exporter.js';
import { checkExportAgainst, checkWitness, readExportCopy } from './witness-check.js';

const dir = mkdtempSync(join(tmpdir(), 'lapse-witness-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let run = 0;

describeEachStore('checkpoint witnesses catch what verify alone cannot', ({ store }) => {
  const db = () => store().db;
  const key = loadOrCreateSigningKey({ dataDir: join(dir, 'key') });
  const publicKeys = [key.publicKey];
  const append = (n: number) =>
    db()
      .transaction()
      .execute((tx) =>
        appendAuditEvents(
          tx,
          Array.from({ length: n }, (_, i) => ({ action: 'grant.activated', actor: 'system', data: { i } })),
        ),
      );
  let sinkFile = '';
  let witnessFile = '';
  const exportNow = () =>
    new AuditExporter(
      db(),
      {
        sinks: [{ name: 'siem', format: 'jsonl', transport: { type: 'file', path: sinkFile, maxBytes: 1 << 30, keep: 1 }, batchSize: 100, checkpoints: true }],
        witnesses: [{ name: 'offsite', type: 'file', path: witnessFile }],
        pollIntervalMs: 1_000,
        timeoutMs: 5_000,
        backoffMinMs: 100,
        backoffMaxMs: 1_000,
      },
      { hostname: 'h', productVersion: '0', onError: vi.fn() },
    ).stop({ flush: true });
  const rewindHeadTo = async (seq: number) => {
    const { rows } = await sql<{ hash: string }>`SELECT hash FROM audit_events WHERE seq = ${seq}`.execute(db());
    await sql`UPDATE audit_head SET seq = ${seq}, hash = ${rows[0]!.hash}`.execute(db());
  };
  const witnessProblems = async (file: string) => (await checkWitness(db(), await readExportCopy(file), publicKeys)).map((p) => p.kind);

  beforeEach(async () => {
    run += 1;
    sinkFile = join(dir, `sink-${run}.jsonl`);
    witnessFile = join(dir, `witness-${run}.jsonl`);
    await sql`TRUNCATE audit_events, audit_checkpoints, audit_export_cursors`.execute(db());
    await sql`UPDATE audit_head SET seq = 0, hash = repeat('0', 64)`.execute(db());
    // 10 events, checkpoint; 5 more, checkpoint; 3 more not yet checkpointed; all exported.
    await append(10);
    await writeCheckpoint(db(), key);
    await append(5);
    await writeCheckpoint(db(), key);
    await append(3);
    await exportNow();
  });

  it('an untouched database agrees with its witness and its sink copy', async () => {
    expect((await verifyAuditChain(db(), { publicKeys })).ok).toBe(true);
    expect(await witnessProblems(witnessFile)).toEqual([]);
    expect(await witnessProblems(sinkFile)).toEqual([]);
  });

  it('tail truncated and head rewound (past the last checkpoint): verify passes, the sink copy catches it', async () => {
    await sql`DELETE FROM audit_events WHERE seq > 15`.execute(db());
    await rewindHeadTo(15);
    expect((await verifyAuditChain(db(), { publicKeys })).ok).toBe(true);
    const kinds = await witnessProblems(sinkFile);
    expect(kinds).toContain('witness_event_missing');
    expect(kinds).toContain('witness_ahead');
  });

  it('last checkpoint deleted: verify passes, the witness catches it', async () => {
    await sql`DELETE FROM audit_checkpoints WHERE seq = 15`.execute(db());
    expect((await verifyAuditChain(db(), { publicKeys })).ok).toBe(true);
    expect(await witnessProblems(witnessFile)).toEqual(['witness_checkpoint_missing']);
  });

  it('both (last checkpoint deleted, tail cut back to the one before, head rewound): verify passes, the witness catches it', async () => {
    await sql`DELETE FROM audit_checkpoints WHERE seq = 15`.execute(db());
    await sql`DELETE FROM audit_events WHERE seq > 10`.execute(db());
    await rewindHeadTo(10);
    const today = await verifyAuditChain(db(), { publicKeys });
    expect(today.ok).toBe(true);
    expect(today.lastCheckpoint?.seq).toBe(10);
    expect(await witnessProblems(witnessFile)).toEqual(['witness_checkpoint_missing', 'witness_ahead']);
    expect(await witnessProblems(sinkFile)).toEqual(expect.arrayContaining(['witness_checkpoint_missing', 'witness_event_missing', 'witness_ahead']));
  });

  it('a forged witness entry is reported as untrusted, not as the database being wrong', async () => {
    const forged = join(dir, `forged-${run}.jsonl`);
    writeFileSync(
      forged,
      `{"type":"checkpoint","checkpoint":{"seq":99,"hash":"${'a'.repeat(64)}","keyId":"${key.keyId}","signature":"AAAA","at":"2026-12-07T00:00:00.000Z"}}\n`,
    );
    expect(await witnessProblems(forged)).toEqual(['witness_invalid']);
  });

  it('--against: the sink copy is proven complete and untampered up to the last checkpoint; edits and gaps are caught', async () => {
    const good = await checkExportAgainst(db(), await readExportCopy(sinkFile), publicKeys);
    expect(good).toMatchObject({ first: 1, last: 18, events: 18, provenThrough: 15, problems: [] });
    const lines = readFileSync(sinkFile, 'utf8').trim().split('\n');
    const edited = join(dir, `edited-${run}.jsonl`);
    writeFileSync(edited, `${lines.map((l) => l.replace('"i":4}', '"i":40}')).join('\n')}\n`);
    expect((await checkExportAgainst(db(), await readExportCopy(edited), publicKeys)).problems.map((p) => p.kind)).toContain('export_edited');
    const gap = join(dir, `gap-${run}.jsonl`);
    writeFileSync(gap, `${lines.filter((l) => !l.includes('"seq":7,')).join('\n')}\n`);
    expect((await checkExportAgainst(db(), await readExportCopy(gap), publicKeys)).problems.map((p) => p.kind)).toContain('export_gap');
    // A repeated delivery (at least once) is not a problem.
    const repeated = join(dir, `repeated-${run}.jsonl`);
    writeFileSync(repeated, `${[...lines, ...lines.slice(2, 5)].join('\n')}\n`);
    expect((await checkExportAgainst(db(), await readExportCopy(repeated), publicKeys)).problems).toEqual([]);
  });
});
