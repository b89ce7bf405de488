import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { offline } from './support/environment.js';

const UNIT = join(import.meta.dirname, '..', 'packaging', 'lapse.service');

/** systemd-analyze verify: exit status 0 even on unknown keys, so its complaints (stderr) are the verdict. */
function verify(path: string): string {
  const result = spawnSync('systemd-analyze', ['verify', path], { encoding: 'utf8', timeout: 30_000 });
  if (result.error)
    throw new Error(`systemd-analyze cannot run (${result.error.message}): install systemd (Debian) or run the offline suite (LAPSE_TEST_OFFLINE=1)`);
  return `${result.stderr}${result.status === 0 ? '' : `exit ${result.status}`}`.trim();
}

describe.skipIf(offline())('packaging/lapse.service', () => {
  it('passes systemd-analyze verify without a complaint', () => {
    expect(verify(UNIT)).toBe('');
  });

  it('is hardened the way docs/operations.md says', () => {
    const unit = readFileSync(UNIT, 'utf8');
    for (const line of ['DynamicUser=yes', 'ProtectSystem=strict', 'StateDirectory=lapse', 'NoNewPrivileges=yes', 'CapabilityBoundingSet=', 'PrivateTmp=yes'])
      expect(unit.split('\n')).toContain(line);
    expect(unit).toMatch(/^ExecStart=.* --data-dir \$\{STATE_DIRECTORY\}/m);
    // lapse serve drains within 15 s; the unit must wait longer before SIGKILL.
    expect(Number(/^TimeoutStopSec=(\d+)s$/m.exec(unit)?.[1])).toBeGreaterThan(15);
  });

  it('would catch a mistake (the check is not vacuous)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'lapse-unit-'));
    const broken = join(dir, 'lapse.service');
    copyFileSync(UNIT, broken);
    writeFileSync(broken, readFileSync(broken, 'utf8').replace('Restart=on-failure', 'Restart=sometimes'));
    expect(verify(broken)).toMatch(/restart specifier/);
  });
});
