import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

/** `lapse demo` as a newcomer runs it, in a fresh directory where `npm start` would run next. */
const cwd = mkdtempSync(join(tmpdir(), 'lapse-demo-'));
afterAll(() => rmSync(cwd, { recursive: true, force: true }));

describe('lapse demo', { timeout: 120_000 }, () => {
  it('keeps to its own data directory, leaving ./.lapse (and a DATABASE_URL server) to `lapse serve`', () => {
    const run = spawnSync(
      process.execPath,
      ['--import', import.meta.resolve('tsx'), resolve('src/cli/main.ts'), 'demo', '--config', resolve('examples/lapse.yaml')],
      {
        cwd,
        encoding: 'utf8',
        // The operator's server settings must not pull the demo's users and events into them.
        env: { ...process.env, DATABASE_URL: 'postgres://nobody@127.0.0.1:1/production', LAPSE_DATA_DIR: join(cwd, 'server-data') },
      },
    );
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(run.stdout).toContain(`pglite database in ${join(cwd, '.lapse-demo')}`);
    expect(run.stdout).toMatch(/audit chain: OK/);
    expect(existsSync(join(cwd, '.lapse-demo', 'data', 'pgdata'))).toBe(true);
    expect(existsSync(join(cwd, '.lapse'))).toBe(false);
    expect(existsSync(join(cwd, 'server-data'))).toBe(false);
  });
});
