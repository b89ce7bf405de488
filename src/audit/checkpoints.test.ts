import { generateKeyPairSync, verify } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { describeEachStore } from '../../test/support/stores.js';
import {
  AuditCheckpointer,
  appendAuditEvents,
  checkpointMessage,
  loadOrCreateSigningKey,
  PRIVATE_KEY_FILE,
  PUBLIC_KEY_FILE,
  readPublicKey,
  writeCheckpoint,
} from './index.js';

const dir = mkdtempSync(join(tmpdir(), 'lapse-audit-keys-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('checkpoint signing key', () => {
  it('is generated once into the data directory (0600), with its public half beside it, and reused', () => {
    const dataDir = join(dir, 'generated');
    const key = loadOrCreateSigningKey({ dataDir });
    expect(key.keyId).toMatch(/^[0-9a-f]{16}$/);
    expect(statSync(join(dataDir, PRIVATE_KEY_FILE)).mode & 0o777).toBe(0o600);
    expect(readPublicKey(join(dataDir, PUBLIC_KEY_FILE)).equals(key.publicKey)).toBe(true);
    expect(loadOrCreateSigningKey({ dataDir }).keyId).toBe(key.keyId);
  });

  it('comes from config when given, and then nothing private is written', () => {
    const dataDir = join(dir, 'configured');
    const pem = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    const key = loadOrCreateSigningKey({ pem, dataDir });
    expect(existsSync(join(dataDir, PRIVATE_KEY_FILE))).toBe(false);
    expect(readFileSync(join(dataDir, PUBLIC_KEY_FILE), 'utf8')).toBe(key.publicKey.export({ type: 'spki', format: 'pem' }));
  });

  it('refuses a key that is not Ed25519, not a key, or readable by others', () => {
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    expect(() => loadOrCreateSigningKey({ pem: rsa, dataDir: dir })).toThrow(
      expect.objectContaining({ code: 'config_invalid', message: expect.stringMatching(/must be Ed25519, not rsa/) }),
    );
    expect(() => loadOrCreateSigningKey({ pem: 'not a key', dataDir: dir })).toThrow(expect.objectContaining({ code: 'config_invalid' }));
    const dataDir = join(dir, 'loose');
    loadOrCreateSigningKey({ dataDir });
    chmodSync(join(dataDir, PRIVATE_KEY_FILE), 0o644);
    expect(() => loadOrCreateSigningKey({ dataDir })).toThrow(/readable by other users/);
    expect(() => readPublicKey(join(dir, 'missing.pem'))).toThrow(expect.objectContaining({ code: 'not_found' }));
  });
});

describeEachStore('audit checkpoints', ({ store }) => {
  const db = () => store().db;
  const key = loadOrCreateSigningKey({ dataDir: join(dir, 'checkpoints') });
  const append = (n: number) =>
    db()
      .transaction()
      .execute((tx) =>
        appendAuditEvents(
          tx,
          Array.from({ length: n }, () => ({ action: 'test.event', actor: 'alice' })),
        ),
      );
  const checkpoints = async () => (await db().selectFrom('audit_checkpoints').selectAll().orderBy('seq').execute()).map((c) => ({ ...c, seq: Number(c.seq) }));

  beforeEach(async () => {
    await sql`TRUNCATE audit_events, audit_checkpoints`.execute(db());
    await sql`UPDATE audit_head SET seq = 0, hash = repeat('0', 64)`.execute(db());
  });

  it('signs the current head, once', async () => {
    expect(await writeCheckpoint(db(), key)).toBeNull();
    await append(3);
    expect(await writeCheckpoint(db(), key)).toBe(3);
    expect(await writeCheckpoint(db(), key)).toBeNull();
    const [checkpoint] = await checkpoints();
    const head = await db().selectFrom('audit_head').select('hash').executeTakeFirstOrThrow();
    expect(checkpoint).toMatchObject({ seq: 3, hash: head.hash, key_id: key.keyId });
    expect(verify(null, checkpointMessage(3, head.hash), key.publicKey, Buffer.from(checkpoint!.signature, 'base64'))).toBe(true);
    expect(checkpointMessage(3, head.hash).toString()).toBe(`lapse-audit-checkpoint:v1\n3\n${head.hash}`);
  });

  it('writes one checkpoint when replicas race to sign the same head', async () => {
    await append(2);
    const results = await Promise.all(Array.from({ length: 5 }, () => writeCheckpoint(db(), key)));
    expect(results.filter((r) => r === 2)).toHaveLength(1);
    expect(await checkpoints()).toHaveLength(1);
  });

  it('checkpoints after N events, and stop() writes a last one and leaves no timer', async () => {
    const onError = vi.fn();
    const checkpointer = new AuditCheckpointer(db(), key, { every: 5, intervalMs: 60_000, onError });
    checkpointer.start();
    await append(5);
    await vi.waitFor(async () => expect((await checkpoints()).map((c) => c.seq)).toEqual([5]), { timeout: 3_000, interval: 50 });
    await append(2);
    await checkpointer.stop();
    expect((await checkpoints()).map((c) => c.seq)).toEqual([5, 7]);
    await checkpointer.stop();
    await append(10);
    await new Promise((resolve) => setTimeout(resolve, 1_200));
    expect((await checkpoints()).map((c) => c.seq)).toEqual([5, 7]);
    expect(onError).not.toHaveBeenCalled();
  });

  it('checkpoints after the interval when fewer than N events arrived', async () => {
    const checkpointer = new AuditCheckpointer(db(), key, { every: 1_000, intervalMs: 50, onError: (error) => expect.fail(String(error)) });
    checkpointer.start();
    try {
      await append(2);
      await vi.waitFor(async () => expect((await checkpoints()).map((c) => c.seq)).toEqual([2]), { timeout: 3_000, interval: 20 });
    } finally {
      await checkpointer.stop();
    }
  });
});
