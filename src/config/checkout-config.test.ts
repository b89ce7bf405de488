import { describe, expect, it } from 'vitest';
import { connectorRegistry, NoopConnector, SshConnector, targetSettingsCheck } from '../connectors/index.js';
import { isLapseError } from '../domain/errors.js';
import { parseConfig } from './index.js';

const registry = connectorRegistry([new NoopConnector(), new SshConnector()]);

const config = (entitlements: string, connector = 'noop') => `version: 1
targets:
  db:
    connector: ${connector}
    entitlements:
${entitlements}
`;

function problems(text: string): string[] {
  try {
    parseConfig(text, 'lapse.yaml', {}, { checkTarget: targetSettingsCheck(registry) });
  } catch (error) {
    if (isLapseError(error, 'config_invalid')) return error.details.problems as string[];
    throw error;
  }
  return [];
}

describe('checkout entitlements (vault) in lapse.yaml', () => {
  it('reads an account with its defaults: exclusive, refuse a second holder, 32 alphanumeric characters, no schedule', () => {
    const parsed = parseConfig(config('      superuser: { checkout: { account: postgres } }'), 'lapse.yaml', {});
    expect(parsed.targets.get('db')!.entitlements.get('superuser')!.checkout).toEqual({
      account: 'postgres',
      exclusive: true,
      whenCheckedOut: 'refuse',
      rotateEveryMs: undefined,
      password: { length: 32, alphabet: 'alphanumeric' },
    });
  });

  it('reads every key', () => {
    const parsed = parseConfig(
      config('      root:\n        checkout: { account: root, whenCheckedOut: queue, rotateEvery: 7d, password: { length: 64, alphabet: symbols } }'),
      'lapse.yaml',
      {},
    );
    expect(parsed.targets.get('db')!.entitlements.get('root')!.checkout).toMatchObject({
      whenCheckedOut: 'queue',
      rotateEveryMs: 7 * 86_400_000,
      password: { length: 64, alphabet: 'symbols' },
    });
  });

  it('refuses bad values with where and how to fix', () => {
    const found = problems(
      config(
        [
          '      a: { checkout: { account: x, password: { length: 8 } } }',
          '      b: { checkout: { account: y, exclusive: false, whenCheckedOut: queue } }',
          '      c: { checkout: { account: z, rotateEvery: 10s } }',
          '      d: { checkout: { account: w, password: { alphabet: emoji } } }',
          '      e: { settings: { roles: [r] }, checkout: { account: v } }',
          '      f: { checkout: { account: x } }',
          '      g: { checkout: { acount: x } }',
        ].join('\n'),
      ),
    );
    const text = found.join('\n');
    expect(text).toMatch(/targets\.db\.entitlements\.a\.checkout\.password\.length: at least 16 characters/);
    expect(text).toMatch(/entitlements\.b\.checkout\.whenCheckedOut: whenCheckedOut applies only to exclusive accounts/);
    expect(text).toMatch(/entitlements\.c\.checkout\.rotateEvery: rotateEvery must be at least 1m/);
    expect(text).toMatch(/entitlements\.d\.checkout\.password\.alphabet/);
    expect(text).toMatch(/entitlements\.e\.settings: a checkout entitlement takes no connector settings/);
    expect(text).toMatch(/entitlements\.g\.checkout: unknown key "acount"/);
  });

  it('refuses one account lent by two entitlements', () => {
    expect(problems(config('      a: { checkout: { account: x } }\n      b: { checkout: { account: x } }'))).toEqual([
      expect.stringMatching(/targets\.db\.entitlements\.b\.checkout\.account: account "x" is already lent by entitlement a/),
    ]);
  });

  it('refuses a checkout on a connector that cannot rotate passwords, naming those that can', () => {
    const found = problems(config('      root: { checkout: { account: root } }', 'ssh'));
    expect(found.join('\n')).toMatch(
      /targets\.db\.entitlements\.root\.checkout: connector ssh cannot rotate passwords, so it cannot lend an account \(connectors that can: noop\)/,
    );
  });
});
