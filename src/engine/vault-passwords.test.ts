import { describe, expect, it } from 'vitest';
import { ALPHABET_CHARACTERS, generatePassword } from './vault-passwords.js';

describe('vault passwords', () => {
  it('have the asked length and only characters of the alphabet', () => {
    for (const alphabet of ['alphanumeric', 'base64url', 'symbols'] as const) {
      for (const length of [16, 33, 128]) {
        const password = generatePassword({ length, alphabet });
        expect(password).toHaveLength(length);
        expect([...password].every((c) => ALPHABET_CHARACTERS[alphabet].includes(c))).toBe(true);
      }
    }
  });

  it('use the whole alphabet about evenly and never repeat', () => {
    const counts = new Map<string, number>();
    const seen = new Set<string>();
    for (let i = 0; i < 400; i++) {
      const password = generatePassword({ length: 62, alphabet: 'alphanumeric' });
      seen.add(password);
      for (const c of password) counts.set(c, (counts.get(c) ?? 0) + 1);
    }
    expect(seen.size).toBe(400);
    expect(counts.size).toBe(62);
    // 400 characters expected of each; a modulo bias or a stuck generator would be far off.
    for (const n of counts.values()) expect(n).toBeGreaterThan(300);
  });
});
