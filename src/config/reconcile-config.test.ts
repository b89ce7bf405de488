import { describe, expect, it } from 'vitest';
import { isLapseError } from '../domain/errors.js';
import { parseConfig } from './index.js';

const base = (extra: string, target = '') => `version: 1
targets:
  db:
    connector: noop
${target}    entitlements: { ro: {} }
  other:
    connector: noop
    entitlements: { ro: {} }
${extra}`;

function problems(text: string): string[] {
  try {
    parseConfig(text, 'lapse.yaml', {});
  } catch (error) {
    if (isLapseError(error, 'config_invalid')) return error.details.problems as string[];
    throw error;
  }
  return [];
}

describe('reconcile settings', () => {
  it('defaults to every target every 15 minutes, reporting only', () => {
    const config = parseConfig(base(''), 'lapse.yaml', {});
    expect(config.reconcile.intervalMs).toBe(15 * 60_000);
    expect(config.reconcile.targets.get('db')).toEqual({ enabled: true, remediate: false, intervalMs: 15 * 60_000 });
  });

  it('applies the global settings to targets that do not override them', () => {
    const config = parseConfig(
      base('reconcile: { enabled: false, interval: 1h }\n', '    reconcile: { enabled: true, remediate: true, interval: 5m }\n'),
      'lapse.yaml',
      {},
    );
    expect(config.reconcile.targets.get('db')).toEqual({ enabled: true, remediate: true, intervalMs: 5 * 60_000 });
    expect(config.reconcile.targets.get('other')).toEqual({ enabled: false, remediate: false, intervalMs: 3_600_000 });
  });

  it('refuses unknown keys and bad values with their place in the file', () => {
    expect(problems(base('', '    reconcile: { remediat: true }\n'))).toEqual([
      expect.stringMatching(/^lapse\.yaml:5:\d+: targets\.db\.reconcile: unknown key "remediat"/),
    ]);
    expect(problems(base('reconcile: { interval: soon }\n'))).toEqual([expect.stringMatching(/reconcile\.interval: "soon" is not a duration/)]);
    expect(problems(base('', '    reconcile: { remediate: "yes" }\n'))).toEqual([expect.stringMatching(/targets\.db\.reconcile\.remediate: /)]);
  });
});
