import fc from 'fast-check';
import { sql } from 'kysely';
import { beforeEach, describe, expect, it } from 'vitest';
import { describeEachStore } from '../../test/support/stores.js';
import { openStore } from '../store/index.js';
import { appendAuditEvent, appendAuditEvents, canonicalJson, chainHash, GENESIS_HASH, verifyAuditChain, type AuditEvent } from './index.js';

describe('canonical JSON', () => {
  it('gives the same bytes whatever the key order, and round-trips', () => {
    const shuffled = (value: unknown, flip: boolean): unknown => {
      if (Array.isArray(value)) return value.map((v) => shuffled(v, flip));
      if (value === null || typeof value !== 'object') return value;
      const entries = Object.entries(value).map(([k, v]) => [k, shuffled(v, !flip)] as const);
      return Object.fromEntries(flip ? entries.reverse() : entries);
    };
    fc.assert(
      fc.property(fc.jsonValue(), fc.boolean(), (value, flip) => {
        const text = canonicalJson(value);
        expect(canonicalJson(shuffled(value, flip))).toBe(text);
        expect(canonicalJson(JSON.parse(text))).toBe(text);
        expect(text).not.toMatch(/\n/);
      }),
    );
  });

  it('refuses values JSON cannot hold', () => {
    expect(() => canonicalJson({ n: Number.NaN })).toThrow(/finite/);
    expect(() => canonicalJson({ n: Infinity })).toThrow(/finite/);
    expect(() => canonicalJson({ f: () => 1 })).toThrow(/function/);
    expect(() => canonicalJson({ b: 1n })).toThrow(/bigint/);
    expect(() => canonicalJson({ m: new Map() })).toThrow(/plain object/);
  });
});

describeEachStore('audit append', ({ store, url, backend }) => {
  const db = () => store().db;

  beforeEach(async () => {
    await sql`TRUNCATE audit_events, audit_checkpoints`.execute(db());
    await sql`UPDATE audit_head SET seq = 0, hash = repeat('0', 64)`.execute(db());
  });

  it('stores the exact hashed bytes, chained from the genesis hash, with the database time', async () => {
    const first = await db()
      .transaction()
      .execute((tx) => appendAuditEvent(tx, { action: 'grant.activated', actor: 'system', subject: 'grt_1', data: { target: 'prod-db', n: 1 } }));
    const second = await db()
      .transaction()
      .execute((tx) => appendAuditEvent(tx, { action: 'grant.expired', actor: 'system' }));
    expect(first).toMatchObject({ seq: 1, id: expect.stringMatching(/^evt_/) });
    expect(second.seq).toBe(2);
    const rows = await db().selectFrom('audit_events').selectAll().orderBy('seq').execute();
    expect(rows[0]!.prev_hash).toBe(GENESIS_HASH);
    expect(rows[0]!.hash).toBe(chainHash(GENESIS_HASH, rows[0]!.payload));
    expect(rows[1]!.prev_hash).toBe(rows[0]!.hash);
    const event = JSON.parse(rows[0]!.payload) as AuditEvent;
    expect(event).toEqual({
      v: 1,
      seq: 1,
      id: first.id,
      at: event.at,
      action: 'grant.activated',
      actor: 'system',
      subject: 'grt_1',
      data: { n: 1, target: 'prod-db' },
    });
    expect(canonicalJson(event)).toBe(rows[0]!.payload);
    expect(Math.abs(Date.parse(event.at) - Date.now())).toBeLessThan(60_000);
    expect(JSON.parse(rows[1]!.payload)).not.toHaveProperty('subject');
    const head = await db().selectFrom('audit_head').selectAll().executeTakeFirstOrThrow();
    expect({ seq: Number(head.seq), hash: head.hash }).toEqual({ seq: 2, hash: second.hash });
  });

  it('appends batches larger than one INSERT statement as one unbroken run', async () => {
    const entries = Array.from({ length: 2_345 }, (_, i) => ({ action: 'bench', actor: 'alice', data: { i } }));
    const appended = await db()
      .transaction()
      .execute((tx) => appendAuditEvents(tx, entries));
    expect(appended.map((a) => a.seq)).toEqual(entries.map((_, i) => i + 1));
    expect(await verifyAuditChain(db(), { publicKeys: [] })).toMatchObject({ ok: true, events: 2_345, lastSeq: 2_345 });
    expect(
      await db()
        .transaction()
        .execute((tx) => appendAuditEvents(tx, [])),
    ).toEqual([]);
  });

  it('rolls back with the caller: a failed transaction leaves no event and no hole', async () => {
    await expect(
      db()
        .transaction()
        .execute(async (tx) => {
          await appendAuditEvent(tx, { action: 'doomed', actor: 'alice' });
          throw new Error('state change failed');
        }),
    ).rejects.toThrow(/state change failed/);
    await db()
      .transaction()
      .execute((tx) => appendAuditEvent(tx, { action: 'kept', actor: 'alice' }));
    expect(await verifyAuditChain(db(), { publicKeys: [] })).toMatchObject({ ok: true, events: 1, lastSeq: 1 });
  });

  it('refuses secrets in audit data, at any depth, but not references to them', async () => {
    const attempt = (data: Record<string, unknown>) =>
      db()
        .transaction()
        .execute((tx) => appendAuditEvent(tx, { action: 'x', actor: 'y', data }));
    await expect(attempt({ nested: { password: 'hunter2' } })).rejects.toThrow(/must not contain secrets: key "data.nested.password"/);
    for (const key of ['clientSecret', 'access_token', 'Credentials', 'privateKey', 'private_key']) {
      await expect(attempt({ [key]: 'x' })).rejects.toThrow(/secrets/);
    }
    await expect(attempt({ list: [{ token: 'x' }] })).rejects.toThrow(/secrets/);
    await attempt({ tokenId: 'tok_1', credential_ids: ['c1'], secretIds: [] });
    expect(await db().selectFrom('audit_events').select('seq').execute()).toHaveLength(1);
  });

  it('refuses an event over the size limit with a clear error, and writes nothing', async () => {
    const attempt = db()
      .transaction()
      .execute((tx) => appendAuditEvent(tx, { action: 'request.pending', actor: 'alice', subject: 'req_1', data: { reason: 'x'.repeat(70_000) } }));
    await expect(attempt).rejects.toMatchObject({ code: 'validation_failed', message: expect.stringMatching(/more than the 65536 allowed/) });
    expect(await db().selectFrom('audit_events').select('seq').execute()).toEqual([]);
  });

  it('keeps one unbroken chain under many overlapping transactions', async () => {
    // PGlite is one session (transactions queue); PostgreSQL runs them truly in parallel.
    const parallel = backend === 'postgres' ? 40 : 8;
    await Promise.all(
      Array.from({ length: parallel }, (_, i) =>
        db()
          .transaction()
          .execute(async (tx) => {
            await appendAuditEvent(tx, { action: 'concurrent.first', actor: `u${i}` });
            await sql`SELECT pg_sleep(0.001)`.execute(tx);
            await appendAuditEvents(tx, [
              { action: 'concurrent.second', actor: `u${i}` },
              { action: 'concurrent.third', actor: `u${i}` },
            ]);
          }),
      ),
    );
    const result = await verifyAuditChain(db(), { publicKeys: [] });
    expect(result).toMatchObject({ ok: true, events: parallel * 3, lastSeq: parallel * 3 });
    // Each transaction's events are consecutive: the head lock is held until commit.
    const actors = (await db().selectFrom('audit_events').select('payload').orderBy('seq').execute()).map((r) => (JSON.parse(r.payload) as AuditEvent).actor);
    for (let i = 0; i < actors.length; i += 3) expect(new Set(actors.slice(i, i + 3)).size).toBe(1);
  });

  it.skipIf(backend !== 'postgres')('extends one chain from two replicas sharing the server', async () => {
    const replica = await openStore({ databaseUrl: url()! });
    try {
      const burst = (database: typeof replica.db, name: string) =>
        Promise.all(
          Array.from({ length: 20 }, (_, i) => database.transaction().execute((tx) => appendAuditEvent(tx, { action: 'replica', actor: `${name}-${i}` }))),
        );
      await Promise.all([burst(db(), 'a'), burst(replica.db, 'b')]);
      expect(await verifyAuditChain(db(), { publicKeys: [] })).toMatchObject({ ok: true, events: 40, lastSeq: 40 });
    } finally {
      await replica.close();
    }
  });
});
