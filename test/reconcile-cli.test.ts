import { spawnSync } from 'node:child_process';
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

/**
 * `lapse reconcile` as an operator runs it: a real process on an embedded database. The noop
 * target keeps its "real" state in a call log, so access can be created behind Lapse's back by
 * writing to it, and the removal the command makes can be seen there.
 */
const dir = mkdtempSync(join(tmpdir(), 'lapse-reconcile-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const callLog = join(dir, 'db-calls.jsonl');
const otherLog = join(dir, 'zz-calls.jsonl');
const config = join(dir, 'lapse.yaml');
writeFileSync(
  config,
  `version: 1\ntargets:\n  db:\n    connector: noop\n    settings: { callLog: "${callLog}" }\n    entitlements: { ro: {} }\n  zz:\n    connector: noop\n    settings: { callLog: "${otherLog}" }\n    entitlements: { ro: {} }\n`,
);

function lapse(...args: string[]) {
  const result = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args, '--config', config, '--data-dir', join(dir, 'data')], {
    encoding: 'utf8',
    env: { ...process.env, DATABASE_URL: '', USER: 'ops' },
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

// NB. Each run starts tsx and the embedded database: seconds each on a loaded 2-core machine.
describe('lapse reconcile', { timeout: 120_000 }, () => {
  it('reports standing access with exit 1, removes it with --remediate, then exits 0', () => {
    appendFileSync(
      callLog,
      `${JSON.stringify({ op: 'provision', target: 'db', grantId: 'grt_made_by_hand', principalId: 'dave', entitlement: 'ro', at: Date.now() })}\n`,
    );

    const found = lapse('reconcile');
    expect(found.stderr).toBe('');
    expect(found.code).toBe(1);
    expect(found.stdout).toMatch(/^db: 1 listed, 0 covered by grants; 1 standing, 0 missing \(1 new, 0 resolved, 0 removed; remediation off\)/);
    expect(found.stdout).toMatch(/STANDING {2}db\/ro {2}dave {2}unknown_grant, since /);

    const json = lapse('--json', 'reconcile', 'db');
    expect(json.code).toBe(1);
    const { reports } = JSON.parse(json.stdout) as {
      reports: { target: string; opened: number; findings: { kind: string; status: string; account: string }[] }[];
    };
    expect(reports).toEqual([
      expect.objectContaining({ target: 'db', opened: 0, findings: [expect.objectContaining({ kind: 'standing', status: 'open', account: 'dave' })] }),
    ]);

    const removed = lapse('reconcile', '--remediate');
    expect(removed.code).toBe(1);
    expect(removed.stdout).toMatch(/1 removed\)/);
    expect(removed.stdout).toMatch(/REMOVED {3}db\/ro {2}dave/);

    const clean = lapse('reconcile');
    expect(clean.code).toBe(0);
    expect(clean.stdout).toMatch(/^db: 0 listed, 0 covered by grants; 0 standing, 0 missing/);
  }, 240_000); // five real processes, each opening the embedded database

  it('prints a hostile account name with its control characters escaped', () => {
    appendFileSync(
      otherLog,
      `${JSON.stringify({ op: 'provision', target: 'zz', grantId: 'grt_x', principalId: 'evil\u001b[2J\u001b]0;pwned\u0007', entitlement: 'ro', at: Date.now() })}\n`,
    );
    const run = lapse('reconcile', 'zz');
    expect(run.code).toBe(1);
    expect(run.stdout).toContain('evil\\u001b[2J\\u001b]0;pwned\\u0007');
    expect(run.stdout).not.toContain('\u001b');
  }, 120_000);

  it('refuses an unknown or malformed target name', () => {
    const unknown = lapse('reconcile', 'nope');
    expect(unknown.code).toBe(3);
    expect(unknown.stderr).toMatch(/there is no target nope/);
    expect(lapse('reconcile', 'DROP;').code).toBe(2);
  }, 120_000);
});
