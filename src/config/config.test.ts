import { mkdtempSync, rmSync, writeFileSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isLapseError, type LapseError } from '../domain/errors.js';
import { loadConfigFile, parseConfig, watchConfig } from './index.js';
import type { EffectiveConfig } from './types.js';

const dir = mkdtempSync(join(tmpdir(), 'lapse-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const BASE = `version: 1
targets:
  prod-db:
    connector: noop
    settings:
      host: db.internal
      password: "\${env:DB_PASSWORD}"
    entitlements:
      readonly: {}
policies:
  - name: sre
    subjects: { groups: [sre] }
    entitlements: ["prod-db/*"]
    autoApprove: true
`;

function problemsOf(text: string, env: NodeJS.ProcessEnv = { DB_PASSWORD: 'x' }): string[] {
  try {
    parseConfig(text, '/etc/lapse/lapse.yaml', env);
  } catch (error) {
    expect(isLapseError(error, 'config_invalid')).toBe(true);
    return (error as LapseError).details.problems as string[];
  }
  throw new Error('config was accepted');
}

describe('lapse.yaml', () => {
  it('loads a valid config with defaults applied and secrets resolved', () => {
    const config = parseConfig(BASE, 'lapse.yaml', { DB_PASSWORD: 's3cret' });
    const target = config.targets.get('prod-db')!;
    expect(target.settings.password).toBe('s3cret');
    expect(target.entitlements.get('readonly')).toMatchObject({ name: 'readonly', target: 'prod-db' });
    expect(config.scheduler).toEqual({
      pollIntervalMs: 1000,
      connectorTimeoutMs: 10_000,
      provisionAttempts: 5,
      revokeBackoffMinMs: 1000,
      revokeBackoffMaxMs: 60_000,
      provisionBackoffMinMs: 1000,
      provisionBackoffMaxMs: 60_000,
    });
    expect(config.policies.policies[0]!.definition.duration).toEqual({ defaultMs: 3_600_000, maxMs: 8 * 3_600_000 });
    expect(config.breakGlass.enabled).toBe(false);
  });

  it('retries provisioning with its own backoff, or the revoke backoff when it has none (the key before it existed)', () => {
    const withRevoke = parseConfig(`${BASE}scheduler:\n  revokeBackoff: { min: 2s, max: 30s }\n`, 'lapse.yaml', { DB_PASSWORD: 'x' });
    expect(withRevoke.scheduler).toMatchObject({
      revokeBackoffMinMs: 2000,
      revokeBackoffMaxMs: 30_000,
      provisionBackoffMinMs: 2000,
      provisionBackoffMaxMs: 30_000,
    });
    const both = parseConfig(`${BASE}scheduler:\n  revokeBackoff: { min: 2s, max: 30s }\n  provisionBackoff: { min: 100ms, max: 5s }\n`, 'lapse.yaml', {
      DB_PASSWORD: 'x',
    });
    expect(both.scheduler).toMatchObject({ revokeBackoffMinMs: 2000, revokeBackoffMaxMs: 30_000, provisionBackoffMinMs: 100, provisionBackoffMaxMs: 5000 });
    expect(problemsOf(`${BASE}scheduler:\n  provisionBackoff: { min: 2m }\n`)).toEqual([
      expect.stringMatching(/scheduler\.provisionBackoff: min must not exceed max/),
    ]);
  });

  it('hashes the config with secret references unresolved', () => {
    const a = parseConfig(BASE, 'lapse.yaml', { DB_PASSWORD: 'one' });
    const b = parseConfig(BASE, 'lapse.yaml', { DB_PASSWORD: 'two' });
    expect(a.version).toBe(b.version);
    expect(a.version).toMatch(/^[0-9a-f]{64}$/);
    const c = parseConfig(BASE.replace('db.internal', 'db2.internal'), 'lapse.yaml', { DB_PASSWORD: 'one' });
    expect(c.version).not.toBe(a.version);
  });

  it('names the file, line, YAML path and a fix for a typo', () => {
    const [problem] = problemsOf(BASE.replace('policies:', 'polices:'));
    expect(problem).toMatch(/^\/etc\/lapse\/lapse\.yaml:10:1: \(top level\): unknown key "polices" \(did you mean "policies"\?\)/);
  });

  it('reports a bad value where it is', () => {
    const problems = problemsOf(BASE.replace('autoApprove: true', 'autoApprove: true\n    duration: { max: forever }'));
    expect(problems).toEqual([expect.stringMatching(/lapse\.yaml:15:\d+: policies\[0\]\.duration\.max: "forever" is not a duration/)]);
  });

  it('refuses a secret written inline and a missing environment variable', () => {
    const inline = problemsOf(BASE.replace('"${env:DB_PASSWORD}"', 'hunter2'));
    expect(inline[0]).toMatch(/targets\.prod-db\.settings\.password: "password" looks like a secret but holds a literal value/);
    const missing = problemsOf(BASE, {});
    expect(missing[0]).toMatch(/environment variable DB_PASSWORD is not set/);
  });

  it('reads file references relative to the config file', async () => {
    writeFileSync(join(dir, 'db-password'), 'from-file\n');
    writeFileSync(join(dir, 'lapse.yaml'), BASE.replace('${env:DB_PASSWORD}', '${file:db-password}'));
    const config = await loadConfigFile(join(dir, 'lapse.yaml'), {});
    expect(config.targets.get('prod-db')!.settings.password).toBe('from-file');
  });

  it('catches policies that match nothing, duplicate names, bad CEL and bad regexes', () => {
    const text = `${BASE}  - name: sre
    subjects: { groups: [sre] }
    entitlements: ["prod-dv/*"]
  - name: broken
    subjects: { groups: [x] }
    entitlements: ["prod-db/readonly"]
    timezone: Mars/Olympus
`;
    const problems = problemsOf(text);
    expect(problems.some((p) => /policies\[1\]\.name: "sre" is used by an earlier policy/.test(p))).toBe(true);
    expect(problems.some((p) => /"prod-dv\/\*" matches no configured entitlement/.test(p))).toBe(true);
    expect(problems.some((p) => /Mars\/Olympus" is not an IANA time zone/.test(p))).toBe(true);
    expect(problemsOf(BASE.replace('autoApprove: true', 'conditions: "principal.id =="'))[0]).toMatch(/policies\[0\] \(sre\)\.conditions: CEL does not parse/);
    expect(problemsOf(BASE.replace('autoApprove: true', 'require: { ticket: { pattern: "(?<=x)y" } }'))[0]).toMatch(/not a valid RE2 regular expression/);
  });

  it('refuses control characters in names and text, allowing tab and newline only in multi-line text', () => {
    const problems = problemsOf(
      BASE.replace('subjects: { groups: [sre] }', 'subjects: { groups: [sre], users: ["ali\\0ce"] }\n    description: "one\\ttwo\\nthree \\e[2J"').replace(
        'readonly: {}',
        'readonly: { labels: { team: "a\\nb" } }',
      ),
    );
    expect(problems).toHaveLength(3);
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(
          /lapse\.yaml:\d+:\d+: targets\.prod-db\.entitlements\.readonly\.labels\.team: contains a control character \(U\+000A\) at position 2; remove it$/,
        ),
        expect.stringMatching(/lapse\.yaml:\d+:\d+: policies\[0\]\.subjects\.users\[0\]: contains a control character \(U\+0000\) at position 4; remove it$/),
        expect.stringMatching(
          /lapse\.yaml:\d+:\d+: policies\[0\]\.description: contains a control character \(U\+001B\) at position 15; remove it \(only tab and newline are allowed\)$/,
        ),
      ]),
    );
    const multiLine = parseConfig(BASE.replace('autoApprove: true', 'autoApprove: true\n    description: "one\\ttwo\\nthree"'), 'lapse.yaml', {
      DB_PASSWORD: 'x',
    });
    expect(multiLine.policies.policies[0]!.definition.description).toBe('one\ttwo\nthree');
  });

  it('bounds every input', () => {
    expect(problemsOf(BASE.replace('readonly: {}', `${'x'.repeat(100)}: {}`))[0]).toMatch(
      /:9:7: .* is not a valid name: Too big: expected string to have <=63 characters/,
    );
    expect(problemsOf(`${BASE}    conditions: "${'true && '.repeat(400)}true"\n`)[0]).toMatch(/Too big|at most/i);
    expect(problemsOf('version: 2\ntargets: {}\n').length).toBe(2);
    expect(problemsOf('version: 1\ntargets: [oops\n')[0]).toMatch(/YAML syntax/);
  });
});

describe('config reload', () => {
  it('applies a good change and keeps the old config on a bad one', async () => {
    const path = join(dir, 'watched.yaml');
    writeFileSync(path, BASE);
    const env = { DB_PASSWORD: 'x' };
    const initial = await loadConfigFile(path, env);
    const reloaded: EffectiveConfig[] = [];
    const errors: unknown[] = [];
    const stop = watchConfig(
      path,
      { onReload: (c) => reloaded.push(c), onError: (e) => errors.push(e) },
      { env, initialVersion: initial.version, debounceMs: 50 },
    );
    try {
      // Editors replace files by rename; the watch must survive that.
      writeFileSync(`${path}.tmp`, BASE.replace('db.internal', 'db3.internal'));
      renameSync(`${path}.tmp`, path);
      await expect.poll(() => reloaded.length, { timeout: 5000 }).toBe(1);
      expect(reloaded[0]!.targets.get('prod-db')!.settings.host).toBe('db3.internal');
      writeFileSync(path, BASE.replace('version: 1', 'version: 7'));
      await expect.poll(() => errors.length, { timeout: 5000 }).toBeGreaterThanOrEqual(1);
      expect(reloaded.length).toBe(1);
      process.emit('SIGHUP', 'SIGHUP');
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(reloaded.length).toBe(1);
    } finally {
      stop();
    }
  });
});
