import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LATEST_MIGRATION } from '../src/store/index.js';

/** The `lapse` command as a user runs it: real process, real exit codes, text and JSON. */
const dir = mkdtempSync(join(tmpdir(), 'lapse-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function lapse(...args: string[]) {
  const result = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { encoding: 'utf8', env: { ...process.env, DATABASE_URL: '' } });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

// NB. Each run starts tsx and, for some, the embedded database: seconds each on a loaded 2-core machine.
describe('lapse CLI', { timeout: 120_000 }, () => {
  it('validates the example config', () => {
    const run = lapse('config', 'validate', 'examples/lapse.yaml');
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/is valid: 2 targets, 4 entitlements, 3 policies/);
  });

  it('reports an invalid config with file, line and path, exit 1, and as JSON', () => {
    const path = join(dir, 'bad.yaml');
    writeFileSync(path, 'version: 1\ntargets:\n  db:\n    connector: noop\n    entitlements: { ro: {} }\n    colour: blue\n');
    const run = lapse('config', 'validate', path);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(`${path}:6:5: targets.db: unknown key "colour"`);
    const json = lapse('--json', 'config', 'validate', path);
    expect(JSON.parse(json.stderr).error).toMatchObject({ code: 'config_invalid' });
  });

  it('reports schema and connector-settings problems in one pass, each at its file:line:col', () => {
    const path = join(dir, 'both.yaml');
    writeFileSync(
      path,
      [
        'version: 1',
        'targets:',
        '  db.main:',
        '    connector: postgres',
        '    settings:',
        '      host: db.internal',
        '      port: 99999',
        '      database: app',
        '      user: lapse',
        '    entitlements:',
        '      ro:',
        '        settings: { roles: [] }',
        'policies:',
        '  - name: p',
        '    subjects: { groups: [sre] }',
        '    entitlements: ["db.main/ro"]',
        '    autoApprove: true',
        '    colour: blue',
        '',
      ].join('\n'),
    );
    const run = lapse('config', 'validate', path);
    expect(run.code).toBe(1);
    const problems = run.stderr
      .split('\n')
      .filter((line) => line.startsWith('  - '))
      .map((line) => line.slice(4));
    expect(problems).toEqual(
      expect.arrayContaining([
        `${path}:18:5: policies[0]: unknown key "colour"`,
        `${path}:7:13: targets.db.main.settings.port: must be a port number from 1 to 65535`,
        expect.stringMatching(
          new RegExp(
            `^${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:12:28: targets\\.db\\.main\\.entitlements\\.ro\\.settings\\.roles: must be a list of 1 to \\d+ role names$`,
          ),
        ),
      ]),
    );
    expect(problems).toHaveLength(3);
    // The connector (unknown here) is checked in the same pass too.
    writeFileSync(path, readFileSync(path, 'utf8').replace('connector: postgres', 'connector: oracle'));
    const unknown = lapse('config', 'validate', path).stderr;
    expect(unknown).toContain(`${path}:4:16: targets.db.main.connector: unknown connector "oracle"`);
    expect(unknown).toContain(`${path}:18:5: policies[0]: unknown key "colour"`);
  });

  it('refuses a connector it does not know', () => {
    const path = join(dir, 'unknown.yaml');
    writeFileSync(path, 'version: 1\ntargets:\n  db:\n    connector: oracle\n    entitlements: { ro: {} }\n');
    const run = lapse('config', 'validate', path);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/unknown connector "oracle"/);
  });

  it('runs policy cases and shows a readable diff for a failing one', () => {
    expect(lapse('policy', 'test', 'examples/policy-tests.yaml', '--config', 'examples/lapse.yaml').code).toBe(0);
    const cases = join(dir, 'cases.yaml');
    writeFileSync(
      cases,
      'cases:\n  - name: wrong on purpose\n    principal: { id: alice, groups: [sre] }\n    request: { entitlement: prod-db/readonly, duration: 1h, reason: "INC-1 looking" }\n    expect: { outcome: pending }\n',
    );
    const run = lapse('policy', 'test', cases, '--config', 'examples/lapse.yaml');
    expect(run.code).toBe(1);
    expect(run.stdout).toContain('FAIL  wrong on purpose');
    expect(run.stdout).toMatch(/outcome:\n {4}- expected "pending"\n {4}\+ actual {3}"approved"/);
    expect(run.stdout).toContain('0 passed, 1 failed');
  });

  it('explains what a principal may get', () => {
    const run = lapse('--json', 'policy', 'explain', '--config', 'examples/lapse.yaml', '--principal', 'alice', '--groups', 'sre');
    expect(run.code).toBe(0);
    const { terms } = JSON.parse(run.stdout) as { terms: { entitlement: string }[] };
    expect(terms.map((t) => t.entitlement)).toEqual(['prod-db/readonly', 'prod-db/admin', 'bastion/login', 'bastion/root']);
  });

  it('migrates a new embedded database and verifies its (empty) audit chain', () => {
    const dataDir = join(dir, 'data');
    expect(lapse('migrate', '--data-dir', dataDir).stdout).toMatch(new RegExp(`applied \\d+ migration\\(s\\): 0001_core, .*${LATEST_MIGRATION}\n`));
    const verify = lapse('audit', 'verify', '--data-dir', dataDir);
    expect(verify.code).toBe(0);
    expect(verify.stdout).toMatch(/audit chain OK: 0 events/);
  });

  it('creates a user and a token shown once, and refuses bad scopes and unknown users', () => {
    const dataDir = join(dir, 'admin');
    expect(lapse('admin', 'user', 'create', 'alice', '--group', 'sre', '--group', 'oncall', '--data-dir', dataDir).stdout).toMatch(
      /created user alice \(usr_[0-9a-z]+\) in sre, oncall/,
    );
    expect(lapse('admin', 'user', 'create', 'alice', '--data-dir', dataDir).code).toBe(4);
    const issued = lapse('--json', 'admin', 'token', 'create', '--user', 'alice', '--scope', 'read', '--expires', '30d', '--data-dir', dataDir);
    expect(issued.code).toBe(0);
    expect(JSON.parse(issued.stdout)).toMatchObject({ id: expect.stringMatching(/^tok_/), token: expect.stringMatching(/^lapse_[A-Za-z0-9_-]{43}$/) });
    expect(lapse('admin', 'token', 'create', '--user', 'alice', '--scope', 'root', '--data-dir', dataDir).code).toBe(2);
    expect(lapse('admin', 'token', 'create', '--user', 'nobody', '--scope', 'read', '--data-dir', dataDir).code).toBe(3);
  });

  it('refuses to verify a database that does not exist, and creates nothing', () => {
    const missing = join(dir, 'nowhere');
    const run = lapse('audit', 'verify', '--data-dir', missing);
    expect(run.code).toBe(3);
    expect(run.stderr).toMatch(/there is no Lapse database in/);
    expect(existsSync(missing)).toBe(false);
  });

  it('exits 2 on a usage error', () => {
    const run = lapse('request-everything');
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/unknown command/);
  });

  it('prints its version', () => {
    const run = lapse('--version');
    expect(run.code).toBe(0);
    expect(run.stdout.trim()).toBe(JSON.parse(readFileSync('package.json', 'utf8')).version);
  });
});
