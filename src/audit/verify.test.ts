import { generateKeyPairSync, sign } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeEach, expect, it } from 'vitest';
import { describeEachStore } from '../../test/support/stores.js';
import { appendAuditEvents, chainHash, checkpointMessage, loadOrCreateSigningKey, verifyAuditChain, writeCheckpoint } from './index.js';
import { PAGE_ROWS } from './pages.js';

const dir = mkdtempSync(join(tmpdir(), 'lapse-audit-verify-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const key = loadOrCreateSigningKey({ dataDir: dir });

/**
 * Every case starts from an intact chain of 25 events with a checkpoint at 20, tampers with the
 * tables the way someone with write access to the database could, and expects verify to say so.
 */
describeEachStore('audit verify', ({ store }) => {
  const db = () => store().db;
  const append = (n: number) =>
    db()
      .transaction()
      .execute((tx) =>
        appendAuditEvents(
          tx,
          Array.from({ length: n }, (_, i) => ({ action: 'test.event', actor: 'alice', subject: `s${i}`, data: { i } })),
        ),
      );
  const verify = () => verifyAuditChain(db(), { publicKeys: [key.publicKey] });
  const kinds = async () => (await verify()).problems.map((p) => `${p.kind}@${p.seq}`);
  const row = (seq: number) => db().selectFrom('audit_events').selectAll().where('seq', '=', String(seq)).executeTakeFirstOrThrow();
  /** Rewrites one event with a hash that matches its new bytes: the careful forger. */
  const forge = async (seq: number, edit: (payload: string) => string) => {
    const { payload, prev_hash } = await row(seq);
    const forged = edit(payload);
    await db()
      .updateTable('audit_events')
      .set({ payload: forged, hash: chainHash(prev_hash, forged) })
      .where('seq', '=', String(seq))
      .execute();
  };

  beforeEach(async () => {
    await sql`TRUNCATE audit_events, audit_checkpoints`.execute(db());
    await sql`UPDATE audit_head SET seq = 0, hash = repeat('0', 64)`.execute(db());
    await append(20);
    await writeCheckpoint(db(), key);
    await append(5);
  });

  it('verifies an intact chain', async () => {
    const result = await verify();
    expect(result).toMatchObject({
      ok: true,
      events: 25,
      lastSeq: 25,
      checkpoints: 1,
      lastCheckpoint: { seq: 20, keyId: key.keyId },
      problems: [],
      problemsOmitted: 0,
    });
  });

  it('verifies an empty log', async () => {
    await sql`TRUNCATE audit_events, audit_checkpoints`.execute(db());
    await sql`UPDATE audit_head SET seq = 0, hash = repeat('0', 64)`.execute(db());
    expect(await verify()).toMatchObject({ ok: true, events: 0, lastSeq: 0, checkpoints: 0, lastCheckpoint: null });
  });

  it('detects an edited payload', async () => {
    await sql`UPDATE audit_events SET payload = replace(payload, '"actor":"alice"', '"actor":"mallory"') WHERE seq = 7`.execute(db());
    expect(await kinds()).toEqual(['edited@7']);
  });

  it('detects an edited hash', async () => {
    await sql`UPDATE audit_events SET hash = repeat('b', 64) WHERE seq = 7`.execute(db());
    expect(await kinds()).toEqual(['edited@7', 'chain_break@8']);
  });

  it('detects an edit whose hash was recomputed, at the next link', async () => {
    await forge(7, (p) => p.replace('"actor":"alice"', '"actor":"mallory"'));
    expect(await kinds()).toEqual(['chain_break@8']);
  });

  it('detects a rewritten chain from the edit onwards, at the signed checkpoint', async () => {
    // Recompute every hash after the edit, head included: only the signature can tell.
    await forge(7, (p) => p.replace('"actor":"alice"', '"actor":"mallory"'));
    for (let seq = 8; seq <= 25; seq++) {
      const previous = await row(seq - 1);
      const { payload } = await row(seq);
      await db()
        .updateTable('audit_events')
        .set({ prev_hash: previous.hash, hash: chainHash(previous.hash, payload) })
        .where('seq', '=', String(seq))
        .execute();
    }
    await sql`UPDATE audit_head SET hash = (SELECT hash FROM audit_events WHERE seq = 25)`.execute(db());
    expect(await kinds()).toEqual(['checkpoint_mismatch@20']);
  });

  it('detects a deleted event', async () => {
    await sql`DELETE FROM audit_events WHERE seq = 10`.execute(db());
    expect(await kinds()).toEqual(['gap@11', 'chain_break@11']);
  });

  it('detects a deleted event that a checkpoint signed', async () => {
    await sql`DELETE FROM audit_events WHERE seq = 20`.execute(db());
    expect(await kinds()).toEqual(expect.arrayContaining(['gap@21', 'checkpoint_mismatch@20']));
  });

  it('detects two events swapped in place', async () => {
    await sql`UPDATE audit_events SET seq = -1 WHERE seq = 3`.execute(db());
    await sql`UPDATE audit_events SET seq = 3 WHERE seq = 4`.execute(db());
    await sql`UPDATE audit_events SET seq = 4 WHERE seq = -1`.execute(db());
    expect(await kinds()).toEqual(expect.arrayContaining(['chain_break@3', 'seq_mismatch@3', 'chain_break@4', 'seq_mismatch@4']));
  });

  it('detects two payloads swapped between rows', async () => {
    await sql`UPDATE audit_events AS a SET payload = b.payload FROM audit_events AS b WHERE (a.seq, b.seq) IN ((5, 6), (6, 5))`.execute(db());
    expect(await kinds()).toEqual(expect.arrayContaining(['edited@5', 'seq_mismatch@5', 'edited@6', 'seq_mismatch@6']));
  });

  it('detects an inserted event with the seqs after it shifted', async () => {
    await sql`UPDATE audit_events SET seq = seq + 1000 WHERE seq > 12`.execute(db());
    await sql`UPDATE audit_events SET seq = seq - 999 WHERE seq > 1000`.execute(db());
    const previous = await row(12);
    const payload = `{"action":"forged","actor":"mallory","at":"2026-01-01T00:00:00.000Z","id":"evt_forged","seq":13,"v":1}`;
    await db()
      .insertInto('audit_events')
      .values({ seq: 13, id: 'evt_forged', payload, prev_hash: previous.hash, hash: chainHash(previous.hash, payload) })
      .execute();
    await sql`UPDATE audit_head SET seq = 26, hash = (SELECT hash FROM audit_events WHERE seq = 26)`.execute(db());
    // The forged event links in, but every event after it now sits one seq off what it says,
    // and the checkpoint's seq now holds a different event.
    expect(await kinds()).toEqual(expect.arrayContaining(['chain_break@14', 'seq_mismatch@14', 'seq_mismatch@26', 'checkpoint_mismatch@20']));
  });

  it('detects a tail truncated before the last checkpoint, with the head rewound', async () => {
    await sql`DELETE FROM audit_events WHERE seq > 15`.execute(db());
    await sql`UPDATE audit_head SET seq = 15, hash = (SELECT hash FROM audit_events WHERE seq = 15)`.execute(db());
    expect(await kinds()).toEqual(['truncated@20']);
  });

  it('detects a truncated tail when the head was left alone', async () => {
    await sql`DELETE FROM audit_events WHERE seq > 15`.execute(db());
    expect(await kinds()).toEqual(['truncated@20', 'head_mismatch@15']);
  });

  it('detects a head that disagrees with the last event', async () => {
    await sql`UPDATE audit_head SET hash = repeat('c', 64)`.execute(db());
    expect(await kinds()).toEqual(['head_mismatch@25']);
  });

  it('detects events beyond the head and events before seq 1', async () => {
    const payload = '{"action":"forged"}';
    await db().insertInto('audit_events').values({ seq: 99, id: 'evt_beyond', payload, prev_hash: 'x', hash: 'y' }).execute();
    await db().insertInto('audit_events').values({ seq: 0, id: 'evt_before', payload, prev_hash: 'x', hash: 'y' }).execute();
    expect(await kinds()).toEqual(['gap@0', 'head_mismatch@99']);
  });

  it('detects a checkpoint whose signature was forged or whose hash was altered', async () => {
    const other = generateKeyPairSync('ed25519');
    const head = await row(25);
    const forged = sign(null, checkpointMessage(25, head.hash), other.privateKey).toString('base64');
    await db().insertInto('audit_checkpoints').values({ seq: 25, hash: head.hash, created_at: new Date(), key_id: key.keyId, signature: forged }).execute();
    await sql`UPDATE audit_checkpoints SET hash = repeat('a', 64) WHERE seq = 20`.execute(db());
    expect(await kinds()).toEqual(['checkpoint_signature@20', 'checkpoint_signature@25', 'checkpoint_mismatch@20']);
  });

  it('reports checkpoints it cannot check with the keys supplied', async () => {
    const other = generateKeyPairSync('ed25519').publicKey;
    const result = await verifyAuditChain(db(), { publicKeys: [other] });
    expect(result.problems.map((p) => `${p.kind}@${p.seq}`)).toEqual(['checkpoint_unverified@20']);
    expect(result.ok).toBe(false);
    // Old and new keys together verify a log signed across a rotation.
    const rotated = loadOrCreateSigningKey({ dataDir: mkdtempSync(join(dir, 'rotated-')) });
    await append(3);
    await writeCheckpoint(db(), rotated);
    expect(await verifyAuditChain(db(), { publicKeys: [key.publicKey, rotated.publicKey] })).toMatchObject({ ok: true, checkpoints: 2 });
  });

  it('reads rows one by one where the page text could lie: raw newline, odd hash length, oversized payload', async () => {
    // Each forgery keeps its own hash consistent, so only the next link (or the size) betrays it.
    await forge(4, (p) => p.replace('"actor":"alice"', '"actor":"al\nice"'));
    await forge(9, () => `{"action":"x"}`.padEnd(70_000, ' '));
    await sql`UPDATE audit_events SET prev_hash = prev_hash || ' ' WHERE seq = 14`.execute(db());
    expect(await kinds()).toEqual(['chain_break@5', 'edited@9', 'seq_mismatch@9', 'chain_break@10', 'chain_break@14', 'edited@14']);
  });

  it('reports, not crashes on, a NULL where the constraints were dropped', async () => {
    await sql`ALTER TABLE audit_events ALTER COLUMN payload DROP NOT NULL`.execute(db());
    try {
      await sql`UPDATE audit_events SET payload = NULL WHERE seq = 6`.execute(db());
      expect(await kinds()).toEqual(['edited@6', 'seq_mismatch@6']);
    } finally {
      await sql`DELETE FROM audit_events WHERE payload IS NULL`.execute(db());
      await sql`ALTER TABLE audit_events ALTER COLUMN payload SET NOT NULL`.execute(db());
    }
  });

  it('streams a log longer than one page, and finds a problem on a later page', async () => {
    await append(PAGE_ROWS * 2);
    const last = 25 + PAGE_ROWS * 2;
    expect(await verify()).toMatchObject({ ok: true, events: last, lastSeq: last });
    await sql`DELETE FROM audit_events WHERE seq = ${PAGE_ROWS + 30}`.execute(db());
    expect(await kinds()).toEqual([`gap@${PAGE_ROWS + 31}`, `chain_break@${PAGE_ROWS + 31}`]);
    // A whole page's worth missing: the pages requested ahead on the dense guess are all wrong.
    await sql`DELETE FROM audit_events WHERE seq BETWEEN ${PAGE_ROWS + 100} AND ${PAGE_ROWS * 2 - 100}`.execute(db());
    expect(await kinds()).toEqual([`gap@${PAGE_ROWS + 31}`, `chain_break@${PAGE_ROWS + 31}`, `gap@${PAGE_ROWS * 2 - 99}`, `chain_break@${PAGE_ROWS * 2 - 99}`]);
  });

  it('raises no false alarm while events are being appended', async () => {
    await append(PAGE_ROWS * 3);
    let appending = true;
    const writer = (async () => {
      while (appending) await append(10);
    })();
    const results = [];
    for (let i = 0; i < 3; i++) results.push(await verify());
    appending = false;
    await writer;
    for (const result of results) expect(result.problems).toEqual([]);
  });
});
