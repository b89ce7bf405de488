import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LapseError } from '../../domain/errors.js';
import { duration, entitlementRef, filter, limit, oneOf, parameters, requestOrGrantId, since, sshPublicKey, text, ticket, totpCode } from './client-flags.js';

/** Flag checks are pure: every refusal is a usage error (exit 2) naming the flag. */
function refusal(work: () => unknown): LapseError {
  try {
    work();
  } catch (error) {
    if (error instanceof LapseError) return error;
    throw error;
  }
  throw new Error('expected a refusal');
}

const dir = mkdtempSync(join(tmpdir(), 'lapse-flags-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('client flags', () => {
  it('target/entitlement', () => {
    expect(entitlementRef('prod-db/readonly')).toEqual({ target: 'prod-db', entitlement: 'readonly' });
    for (const bad of ['prod-db', 'prod-db/', '/readonly', 'a/b/c', 'PROD/x', 'db/x y', `${'a'.repeat(64)}/x`, 'db/x;drop']) {
      expect(
        refusal(() => entitlementRef(bad)),
        bad,
      ).toMatchObject({ code: 'validation_failed', exitCode: 2, details: { where: '<target>/<entitlement>' } });
    }
  });

  it('durations, bounded', () => {
    expect(duration('1h30m', '--for')).toBe('1h30m');
    expect(refusal(() => duration('10x', '--for')).details.where).toBe('--for');
    expect(refusal(() => duration('0m', '--for')).message).toMatch(/out of range/);
    expect(refusal(() => duration('25h', '--timeout', 24 * 3_600_000)).message).toMatch(/longer than the 24 h/);
  });

  it('free text: required, trimmed, bounded, no control characters', () => {
    expect(text('  why  ', '--reason', 10, true)).toBe('why');
    expect(text(undefined, '--comment', 10, false)).toBeUndefined();
    expect(refusal(() => text(undefined, '--reason', 10, true)).message).toBe('--reason is required');
    expect(refusal(() => text('   ', '--reason', 10, true)).message).toBe('--reason is empty');
    expect(refusal(() => text('x'.repeat(11), '--reason', 10, true)).message).toMatch(/at most 10/);
    expect(refusal(() => text('ok\u001b[2Jgone', '--reason', 100, true)).message).toMatch(/control character/);
    // The same rule as the server: tab and newline are fine in a reason; NUL, CR, C1 controls (a
    // terminal reads U+009B as CSI) and lone surrogates are not, and the message says where.
    expect(text('rotate:\n\t1. stop', '--reason', 100, true)).toBe('rotate:\n\t1. stop');
    for (const bad of ['ok\u0000', 'ok\rgone', 'ok\u009b2J', 'ok\ud800']) {
      expect(refusal(() => text(bad, '--comment', 100, false))).toMatchObject({ code: 'validation_failed', details: { where: '--comment' } });
    }
    expect(refusal(() => text('ok\u009b2J', '--comment', 100, false)).message).toBe(
      '--comment contains a control character (U+009B) at position 3; remove it (only tab and newline are allowed)',
    );
  });

  it('tickets, parameters, limits, choices, ids, codes', () => {
    expect(ticket('OPS-1')).toBe('OPS-1');
    expect(refusal(() => ticket('OPS 1')).details.where).toBe('--ticket');
    // The same bounds as the server's: 200 characters is a ticket, 201 is not.
    expect(ticket('A'.repeat(200))).toHaveLength(200);
    expect(refusal(() => ticket('A'.repeat(201))).details.where).toBe('--ticket');
    expect(refusal(() => parameters(['k'.repeat(64) + '=v'])).details.where).toBe('--param');
    expect(parameters(['schema=public', 'empty=', 'eq=a=b'])).toEqual({ schema: 'public', empty: '', eq: 'a=b' });
    expect(refusal(() => parameters(['novalue'])).message).toMatch(/is not key=value/);
    expect(refusal(() => parameters(['1x=y'])).message).toMatch(/is not key=value/);
    expect(refusal(() => parameters(['a=1', 'a=2'])).message).toMatch(/given twice/);
    expect(refusal(() => parameters(Array.from({ length: 17 }, (_, i) => `k${i}=v`))).message).toMatch(/at most 16/);
    expect(refusal(() => parameters([`k=${'v'.repeat(8193)}`])).message).toMatch(/longer than 8192/);
    expect(limit('200')).toBe(200);
    for (const bad of ['0', '201', '-1', '1.5', 'ten', '1e2']) expect(refusal(() => limit(bad)).details.where).toBe('--limit');
    expect(oneOf('csv', ['jsonl', 'csv'], '--export')).toBe('csv');
    expect(refusal(() => oneOf('xml', ['jsonl', 'csv'], '--export')).message).toBe('--export must be one of jsonl, csv');
    expect(requestOrGrantId('grt_01jaaaaaaaaaaaaaaaaaaaaaaa', '<id>')).toEqual({ kind: 'grant', id: 'grt_01jaaaaaaaaaaaaaaaaaaaaaaa' });
    expect(refusal(() => requestOrGrantId('req_../../admin', '<id>')).message).toMatch(/not a request or grant id/);
    expect(totpCode('123456')).toBe('123456');
    expect(refusal(() => totpCode('12345a')).details.where).toBe('--mfa-code');
    expect(filter('grant.*', '--action')).toBe('grant.*');
    expect(refusal(() => filter('a b', '--actor')).details.where).toBe('--actor');
  });

  it('--since: a duration or an ISO time, passed on as written', () => {
    expect(since('1h', '--since')).toBe('1h');
    expect(since('2025-01-31T12:00:00Z', '--since')).toBe('2025-01-31T12:00:00Z');
    expect(refusal(() => since('yesterday', '--since')).message).toMatch(/neither a duration nor an ISO-8601 time/);
    expect(refusal(() => since('2025-13-45', '--since')).details.where).toBe('--since');
  });

  it('--ssh-key: a public key is read; a private key is refused and never sent', () => {
    const pub = join(dir, 'id_ed25519.pub');
    writeFileSync(pub, 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeFakeFakeFakeFakeFakeFakeFakeFakeFakeFake alice@laptop\n');
    expect(sshPublicKey(pub)).toBe('ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeFakeFakeFakeFakeFakeFakeFakeFakeFakeFake alice@laptop');
    const priv = join(dir, 'id_ed25519');
    writeFileSync(priv, '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n');
    const error = refusal(() => sshPublicKey(priv));
    expect(error.message).toMatch(/is a PRIVATE key; it was not sent/);
    expect(error.details.hint).toMatch(/id_ed25519\.pub/);
    expect(JSON.stringify(error.details)).not.toContain('b3BlbnNzaC1rZXktdjEAAAAA');
    const junk = join(dir, 'junk.pub');
    writeFileSync(junk, 'hello\nworld\n');
    expect(refusal(() => sshPublicKey(junk)).message).toMatch(/not an OpenSSH public key/);
    expect(refusal(() => sshPublicKey(join(dir, 'missing.pub'))).message).toMatch(/cannot read/);
    const big = join(dir, 'big.pub');
    writeFileSync(big, `ssh-ed25519 ${'A'.repeat(20_000)}`);
    expect(refusal(() => sshPublicKey(big)).message).toMatch(/far smaller/);
  });
});
