import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { sql } from 'kysely';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { describeEachStore } from '../../test/support/stores.js';
import { appendAuditEvent, appendAuditEvents, canonicalJson, loadOrCreateSigningKey, verifyAuditChain, writeCheckpoint } from './index.js';

const dir = mkdtempSync(join(tmpdir(), 'lapse-audit-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const key = loadOrCreateSigningKey({ dataDir: dir });

describe('canonical JSON', () => {
  it('does not depend on key order and round-trips', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        const text = canonicalJson(value);
        expect(canonicalJson(JSON.parse(text))).toBe(text);
        if (value && typeof value === 'object' && !Array.isArray(value)) {
          const reversed = Object.fromEntries(Object.entries(value).reverse());
          expect(canonicalJson(reversed)).toBe(text);
        }
      }),
    );
  });

  it('refuses values JSON cannot hold', () => {
    expect(() => canonicalJson({ n: Number.NaN })).toThrow(/finite/);
    expect(() => canonicalJson({ f: () => 1 })).toThrow(/function/);
  });
});

describe('signing key', () => {
  it('is generated once into the data directory and reused', () => {
    const again = loadOrCreateSigningKey({ dataDir: dir });
    expect(again.keyId).toBe(key.keyId);
  });
});

describeEachStore('audit chain', ({ store }) => {
  const db = () => store().db;
  const append = (n: number) => db().transaction().execute((tx) => appendAuditEvents(tx, Array.from({ length: n }, (_, i) => ({ action: 'test.event', actor: 'alice', subject: `s${i}`, data: { i } }))));
  const verify = () => verifyAuditChain(db(), { publicKeys: [key.publicKey] });
  const kinds = async () => (await verify()).problems.map((p) => p.kind);

  beforeEach(async () => {
    // Each case starts from a clean, intact chain.
    await sql`TRUNCATE audit_events, audit_checkpoints`.execute(db());
    await sql`UPDATE audit_head SET seq = 0, hash = repeat('0', 64)`.execute(db());
    await append(20);
    await writeCheckpoint(db(), key);
    await append(5);
  });

  it('verifies an intact chain', async () => {
    const result = await verify();
    expect(result).toMatchObject({ ok: true, events: 25, lastSeq: 25, checkpoints: 1, problems: [] });
  });

  it('detects an edited event', async () => {
    await sql`UPDATE audit_events SET payload = replace(payload, '"actor":"alice"', '"actor":"mallory"') WHERE seq = 7`.execute(db());
    expect(await kinds()).toContain('edited');
  });

  it('detects an edited event whose hash was recomputed, at the next link', async () => {
    const row = await db().selectFrom('audit_events').select(['payload', 'prev_hash']).where('seq', '=', '7').executeTakeFirstOrThrow();
    const { chainHash } = await import('./chain.js');
    const forged = row.payload.replace('"actor":"alice"', '"actor":"mallory"');
    await db().updateTable('audit_events').set({ payload: forged, hash: chainHash(row.prev_hash, forged) }).where('seq', '=', '7').execute();
    const { problems } = await verify();
    expect(problems).toEqual([expect.objectContaining({ seq: 8, kind: 'chain_break' })]);
  });

  it('detects a deleted event', async () => {
    await sql`DELETE FROM audit_events WHERE seq = 10`.execute(db());
    expect(await kinds()).toEqual(expect.arrayContaining(['gap', 'chain_break']));
  });

  it('detects reordered events', async () => {
    await sql`UPDATE audit_events SET seq = -1 WHERE seq = 3`.execute(db());
    await sql`UPDATE audit_events SET seq = 3 WHERE seq = 4`.execute(db());
    await sql`UPDATE audit_events SET seq = 4 WHERE seq = -1`.execute(db());
    expect(await kinds()).toEqual(expect.arrayContaining(['chain_break', 'seq_mismatch']));
  });

  it('detects an inserted event', async () => {
    await sql`UPDATE audit_events SET seq = seq + 1000 WHERE seq > 12`.execute(db());
    await sql`UPDATE audit_events SET seq = seq - 999 WHERE seq > 1000`.execute(db());
    await sql`INSERT INTO audit_events (seq, id, payload, prev_hash, hash) VALUES (13, 'evt_forged', '{"action":"forged"}', repeat('0', 64), repeat('1', 64))`.execute(db());
    expect(await kinds()).toEqual(expect.arrayContaining(['chain_break', 'edited']));
  });

  it('detects a tail truncated since the last checkpoint', async () => {
    await sql`DELETE FROM audit_events WHERE seq > 15`.execute(db());
    await sql`UPDATE audit_head SET seq = 15, hash = (SELECT hash FROM audit_events WHERE seq = 15)`.execute(db());
    expect(await kinds()).toContain('truncated');
  });

  it('detects a forged checkpoint and an unknown signing key', async () => {
    await sql`UPDATE audit_checkpoints SET hash = repeat('a', 64)`.execute(db());
    expect(await kinds()).toEqual(expect.arrayContaining(['checkpoint_signature', 'checkpoint_mismatch']));
    const other = generateKeyPairSync('ed25519').publicKey;
    const result = await verifyAuditChain(db(), { publicKeys: [other] });
    expect(result.problems.map((p) => p.kind)).toContain('checkpoint_unverified');
  });

  it('keeps one unbroken chain under many overlapping transactions', async () => {
    await Promise.all(Array.from({ length: 30 }, (_, i) => db().transaction().execute((tx) => appendAuditEvent(tx, { action: 'concurrent', actor: `u${i}` }))));
    const result = await verify();
    expect(result.ok).toBe(true);
    expect(result.events).toBe(55);
  });

  it('refuses secrets in audit data', async () => {
    await expect(db().transaction().execute((tx) => appendAuditEvent(tx, { action: 'x', actor: 'y', data: { nested: { password: 'hunter2' } } }))).rejects.toThrow(/secrets/);
  });
});
