import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createSealer } from './sealer.js';

/** A value as the sealer wrote it before envelopes (v1): AES-GCM with the key itself. */
function sealV1(key: Buffer, plaintext: string, context: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from(context, 'utf8'));
  const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  const id = createHash('sha256').update(key).digest('hex').slice(0, 16);
  return ['v1', id, iv.toString('base64url'), cipher.getAuthTag().toString('base64url'), body.toString('base64url')].join('.');
}

describe('sealer (envelope encryption)', () => {
  const kek = randomBytes(32);
  const sealer = createSealer(kek);

  it('seals each value under its own data key and opens it only in its context', () => {
    const one = sealer.seal('correct horse', 'vault-account:a:1');
    const two = sealer.seal('correct horse', 'vault-account:a:1');
    expect(one.startsWith(`v2.${sealer.keyId}.`)).toBe(true);
    // Different wrapped data keys and bodies for the same plaintext.
    expect(one.split('.')[4]).not.toBe(two.split('.')[4]);
    expect(one).not.toContain('correct');
    expect(sealer.open(one, 'vault-account:a:1')).toBe('correct horse');
    expect(() => sealer.open(one, 'vault-account:b:1')).toThrow(/integrity check/);
  });

  it('refuses a wrapped data key moved onto another value', () => {
    const a = sealer.seal('alpha', 'ctx').split('.');
    const b = sealer.seal('bravo', 'ctx').split('.');
    const spliced = [...b.slice(0, 5), ...a.slice(5)].join('.');
    expect(() => sealer.open(spliced, 'ctx')).toThrow(/integrity check/);
  });

  it('opens values sealed before envelopes (v1) and with a previous key', () => {
    const old = randomBytes(32);
    const rotated = createSealer(kek, [old]);
    expect(rotated.open(sealV1(old, 's3cret', 'ctx'), 'ctx')).toBe('s3cret');
    const byOld = createSealer(old).seal('s3cret', 'ctx');
    expect(rotated.open(byOld, 'ctx')).toBe('s3cret');
    expect(() => createSealer(randomBytes(32)).open(byOld, 'ctx')).toThrow(/not configured/);
  });

  it('rewraps a value under the current key without re-encrypting it, so the old key is no longer needed', () => {
    const old = randomBytes(32);
    const sealedByOld = createSealer(old).seal('s3cret', 'ctx');
    const rotated = createSealer(kek, [old]);
    const rewrapped = rotated.rewrap(sealedByOld, 'ctx');
    expect(rotated.keyIdOf(rewrapped)).toBe(sealer.keyId);
    expect(rotated.keyIdOf(sealedByOld)).not.toBe(sealer.keyId);
    // The encrypted secret itself is carried over unchanged; only its data key was wrapped again.
    expect(rewrapped.split('.').slice(5)).toEqual(sealedByOld.split('.').slice(5));
    expect(createSealer(kek).open(rewrapped, 'ctx')).toBe('s3cret');
    expect(() => rotated.rewrap(sealedByOld, 'other')).toThrow(/integrity check/);
    const fromV1 = rotated.rewrap(sealV1(old, 'legacy', 'ctx'), 'ctx');
    expect(fromV1.startsWith('v2.')).toBe(true);
    expect(createSealer(kek).open(fromV1, 'ctx')).toBe('legacy');
  });

  it('says a malformed value is malformed', () => {
    expect(() => sealer.open('v2.abc.def', 'ctx')).toThrow(/malformed/);
    expect(() => sealer.open('v9.a.b.c.d', 'ctx')).toThrow(/malformed/);
  });
});
