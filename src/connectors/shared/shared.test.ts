import { describe, expect, it } from 'vitest';
import { newId } from '../../domain/ids.js';
import {
  checkAccounts,
  checkName,
  checkNameList,
  ephemeralAccountName,
  grantIdOfAccount,
  newAccountPassword,
  tlsOptions,
  validateTls,
  warnIfInsecure,
  withinDeadline,
} from './index.js';

describe('ephemeral account names', () => {
  it('maps a grant id to lapse_<26 chars> and back', () => {
    const grantId = newId('grant');
    const account = ephemeralAccountName(grantId);
    expect(account).toMatch(/^lapse_[0-9a-z]{26}$/);
    expect(account).toHaveLength(32);
    expect(grantIdOfAccount(account)).toBe(grantId);
  });

  it('refuses anything that is not a grant id, and maps no other name back', () => {
    expect(() => ephemeralAccountName('x"; DROP ROLE postgres; --')).toThrow(/is not a grant id/);
    expect(() => ephemeralAccountName(newId('request'))).toThrow(/is not a grant id/);
    for (const name of ['lapse_admin', 'lapse', `lapse_${'a'.repeat(27)}`, `LAPSE_${'a'.repeat(26)}`, `xlapse_${'a'.repeat(26)}`])
      expect(grantIdOfAccount(name)).toBeNull();
  });
});

describe('passwords', () => {
  it('are 32 base64url characters and never repeat', () => {
    const seen = new Set(Array.from({ length: 1000 }, () => newAccountPassword()));
    expect(seen.size).toBe(1000);
    for (const password of seen) expect(password).toMatch(/^[A-Za-z0-9_-]{32}$/);
  });
});

describe('tls settings', () => {
  it('is off unless asked for; a CA or a skip implies on; verification stays on unless skipped', () => {
    expect(tlsOptions(undefined)).toBeUndefined();
    expect(tlsOptions({ enabled: false })).toBeUndefined();
    expect(tlsOptions({ enabled: true })).toEqual({ rejectUnauthorized: true });
    expect(tlsOptions({ ca: 'PEM' })).toEqual({ ca: 'PEM', rejectUnauthorized: true });
    expect(tlsOptions({ insecureSkipVerify: true })).toEqual({ rejectUnauthorized: false });
  });

  it('reports bad values and unknown keys', () => {
    expect(validateTls({ enabled: 'yes', ca: 'nope', verify: false }, 'targets.t.settings')).toEqual([
      'targets.t.settings.tls.verify: unknown setting; use enabled, ca or insecureSkipVerify',
      'targets.t.settings.tls.enabled: must be true or false',
      'targets.t.settings.tls.ca: must be a PEM certificate bundle (up to 64 KiB); write ${file:/path/to/ca.pem}',
    ]);
    expect(validateTls('on', 'x')).toEqual(['x.tls: must be a map with enabled, ca and insecureSkipVerify']);
  });

  it('warns only when verification is off', () => {
    const warnings: string[] = [];
    warnIfInsecure({ rejectUnauthorized: true }, 'db', (m) => warnings.push(m));
    warnIfInsecure(undefined, 'db', (m) => warnings.push(m));
    expect(warnings).toEqual([]);
    warnIfInsecure({ rejectUnauthorized: false }, 'db', (m) => warnings.push(m));
    expect(warnings).toEqual([expect.stringContaining('target db connects with tls.insecureSkipVerify: true')]);
  });
});

describe('settings checks', () => {
  it('bounds names in bytes and refuses control characters', () => {
    expect(checkName('é'.repeat(31), 'w', 63)).toBeUndefined();
    expect(checkName('é'.repeat(32), 'w', 63)).toBe('w: the name is longer than 63 bytes');
    expect(checkName('a\nb', 'w', 63, 'role name')).toBe('w: the role name contains a control character; remove it');
    expect(checkName(7, 'w', 63)).toBe('w: must be a non-empty name');
    expect(checkNameList(['a', 'a'], 'w', 63, 4, 'role')).toEqual(['w: lists a role twice; remove the duplicate']);
    expect(checkNameList('a', 'w', 63, 4, 'role')).toEqual(['w: must be a list of 1 to 4 role names']);
    expect(checkAccounts({ alice: '' }, 'w', 63)).toEqual(['w.alice: must be a non-empty account name']);
  });
});

describe('deadlines', () => {
  it('rejects promptly with connector_timeout and tears down the work', async () => {
    let tornDown = false;
    const started = Date.now();
    await expect(
      withinDeadline(
        AbortSignal.timeout(50),
        'slow call',
        () => new Promise(() => {}),
        () => (tornDown = true),
      ),
    ).rejects.toMatchObject({ code: 'connector_timeout', message: expect.stringContaining('slow call did not finish before its deadline') });
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(tornDown).toBe(true);
  });

  it('does not start work whose deadline has already passed, and passes results through', async () => {
    let started = false;
    await expect(withinDeadline(AbortSignal.abort(), 'call', async () => (started = true))).rejects.toMatchObject({ code: 'connector_timeout' });
    expect(started).toBe(false);
    expect(await withinDeadline(AbortSignal.timeout(1_000), 'call', async () => 42)).toBe(42);
  });
});
