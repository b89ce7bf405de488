import { describe, expect, it } from 'vitest';
import { newId } from './ids.js';
import { anyId, connectorParameters, durationText, idOf, MAX_PARAMETERS, NAME_PATTERN, reasonText, resourceName, ticketText } from './input-schemas.js';

describe('the shared input fields', () => {
  it('names: NAME_PATTERN and resourceName accept and refuse the same values', () => {
    const samples = ['prod-db', 'a', '0', 'read_only.v2', 'x'.repeat(63), 'x'.repeat(64), '', 'Prod', '-db', '.db', 'db/x', 'db x', 'dé'];
    for (const sample of samples) expect(resourceName.safeParse(sample).success, sample).toBe(NAME_PATTERN.test(sample));
    expect(resourceName.safeParse('Prod').error?.issues[0]?.message).toBe('must be lower-case letters, digits, "_", "." or "-"');
  });

  it('ids: one kind for path parameters, any kind for use-cases', () => {
    const request = newId('request');
    expect(idOf('request').safeParse(request).success).toBe(true);
    expect(idOf('grant').safeParse(request).error?.issues[0]?.message).toBe('must be a grt_ id');
    expect(anyId.safeParse(request).success).toBe(true);
    expect(anyId.safeParse('req_').success).toBe(false);
  });

  it('free text is bounded and one-line where it should be', () => {
    expect(reasonText.safeParse('line one\nline two').success).toBe(true);
    expect(reasonText.safeParse('x'.repeat(2001)).success).toBe(false);
    expect(ticketText.safeParse('OPS-1\n').success).toBe(false);
    expect(durationText.safeParse('1').success).toBe(false);
  });

  it('connector parameters: named, short and few', () => {
    expect(connectorParameters.safeParse({ sshPublicKey: 'ssh-ed25519 AAAA' }).success).toBe(true);
    expect(connectorParameters.safeParse({ '1x': 'v' }).success).toBe(false);
    const many = Object.fromEntries(Array.from({ length: MAX_PARAMETERS + 1 }, (_, i) => [`k${i}`, 'v']));
    expect(connectorParameters.safeParse(many).error?.issues[0]?.message).toBe(`at most ${MAX_PARAMETERS} parameters`);
  });
});
