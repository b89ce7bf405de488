import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore } from '../src/store/index.js';
import { TEST_CONFIG } from './support/engine.js';
import { cliHome, runLapse, startLapseServer, type LapseServer } from './support/lapse-server.js';
import { startSmtpServer, type TestSmtpServer } from './support/smtp.js';

const dir = mkdtempSync(join(tmpdir(), 'lapse-notify-cli-'));
const home = cliHome();
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
  home.remove();
});

describe('lapse notify test <channel>', { timeout: 120_000 }, () => {
  let smtp: TestSmtpServer;
  let server: LapseServer;
  beforeAll(async () => {
    smtp = await startSmtpServer();
    writeFileSync(join(dir, 'ca.pem'), smtp.pki.caPem);
    server = await startLapseServer({
      yaml: `${TEST_CONFIG}
notifications:
  channels:
    mail:
      type: email
      from: lapse@example.test
      smtp: { host: 127.0.0.1, port: ${smtp.port}, ca: "\${file:${join(dir, 'ca.pem')}}", timeout: 2s }
`,
    });
  });
  afterAll(async () => {
    await server?.close();
    await smtp?.close();
  });

  const lapse = async (user: string, args: string[], scopes: ('read' | 'request' | 'approve' | 'admin')[] = ['admin']) =>
    runLapse(['--json', ...args], { HOME: home.dir, LAPSE_CONFIG_DIR: home.dir, LAPSE_SERVER: server.url, LAPSE_TOKEN: await server.token(user, scopes) });

  it('sends a test message over the server, for admins', async () => {
    const sent = await lapse('root', ['notify', 'test', 'mail', '--to', 'ops@example.test']);
    expect(sent.code, sent.stderr).toBe(0);
    const answer = JSON.parse(sent.stdout) as { channel: string; to: string; id: string };
    expect(answer).toMatchObject({ channel: 'mail', to: 'ops@example.test' });
    const [mail] = await smtp.waitFor(1);
    expect(mail).toMatchObject({ to: ['ops@example.test'], messageId: `<${answer.id}@lapse>`, secure: true });
    expect(mail!.text).toContain('a test of channel mail');
  });

  it('says why when it cannot: not an admin, no such channel, no address, bad input', async () => {
    const refused = await lapse('alice', ['notify', 'test', 'mail', '--to', 'ops@example.test'], ['read', 'request']);
    expect(refused.code).toBe(6);
    const unknown = await lapse('root', ['notify', 'test', 'slack', '--to', 'ops@example.test']);
    expect(unknown.code).toBe(3);
    expect(JSON.parse(unknown.stderr).error.hint).toMatch(/configured: mail/);
    const noAddress = await lapse('root', ['notify', 'test', 'mail']);
    expect(noAddress.code).toBe(2);
    expect(JSON.parse(noAddress.stderr).error.message).toMatch(/no email address on record for root/);
    const bad = await lapse('root', ['notify', 'test', 'mail', '--to', 'not-an-address']);
    expect(bad.code).toBe(2);
    expect(JSON.parse(bad.stderr).error.where).toBe('--to');
    expect(smtp.received).toHaveLength(1);
  });
});

describe('lapse admin user set-email', { timeout: 120_000 }, () => {
  const dataDir = join(dir, 'data');
  const admin = (args: string[]) => {
    const run = spawnSync(
      process.execPath,
      ['--import', 'tsx', 'src/cli/main.ts', '--json', 'admin', 'user', ...args, '--config', 'examples/lapse.yaml', '--data-dir', dataDir],
      {
        encoding: 'utf8',
        env: { ...process.env, DATABASE_URL: '' },
      },
    );
    return { code: run.status, stdout: run.stdout, stderr: run.stderr };
  };

  it('sets, validates and clears where a user’s mail goes, audited', async () => {
    expect(admin(['create', 'dana', '--group', 'sre']).code).toBe(0);
    const set = admin(['set-email', 'dana', 'Dana@Example.com']);
    expect(set.code, set.stderr).toBe(0);
    expect(JSON.parse(set.stdout)).toEqual({ name: 'dana', email: 'dana@example.com' });
    expect(admin(['set-email', 'dana', 'not an address']).code).toBe(2);
    expect(admin(['set-email', 'nobody', 'x@example.com']).code).toBe(3);
    expect(admin(['set-email', 'dana']).code).toBe(2);
    const store = await openStore({ dataDir: join(dataDir, 'data') });
    try {
      const row = await store.db.selectFrom('users').select('email').where('name', '=', 'dana').executeTakeFirstOrThrow();
      expect(row.email).toBe('dana@example.com');
      const events = await store.db.selectFrom('audit_events').select('payload').orderBy('seq').execute();
      expect(events.map((e) => JSON.parse(e.payload) as { action: string }).filter((e) => e.action === 'user.email_set')).toHaveLength(1);
    } finally {
      await store.close();
    }
    expect(admin(['set-email', 'dana', '--clear']).code).toBe(0);
  });
});
