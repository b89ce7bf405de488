import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApiServer, type ApiServer } from '../src/api/index.js';
import { loadCredentials } from '../src/cli/credentials.js';
import { startEngine, type TestEngine } from './support/engine.js';
import { completeLoginAt } from './support/oidc-login.js';
import { startOidcProvider, type TestOidcProvider } from './support/oidc-provider.js';
import { configWithAuth, createLocalUser, PASSWORD } from './support/sign-in.js';
import { openTestStore, type OpenedStore } from './support/stores.js';
import { authFor } from './support/auth-service.js';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** `lapse ...` as a user runs it, with its own config dir; `onStderr` sees output as it arrives. */
function lapse(
  configDir: string,
  args: string[],
  options: { stdin?: string; onStderr?: (text: string) => void; env?: Record<string, string> } = {},
): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
      env: { ...process.env, LAPSE_CONFIG_DIR: configDir, LAPSE_TOKEN: '', LAPSE_SERVER: '', DISPLAY: '', WAYLAND_DISPLAY: '', ...options.env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      options.onStderr?.(stderr);
    });
    child.stdin.end(options.stdin ?? '');
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Runs `lapse login --no-browser`, completes the printed link like a browser would, and waits for the CLI. */
async function loginThroughBrowser(configDir: string, server: string, username: string, password?: string): Promise<Run> {
  let completing: Promise<unknown> | undefined;
  const run = await lapse(configDir, ['--json', 'login', '--server', server, '--no-browser'], {
    onStderr: (text) => {
      const link = /(http:\/\/\S+\/auth\/cli\?\S+)/.exec(text)?.[1];
      if (link && !completing) completing = completeLoginAt(link, username, password === undefined ? {} : { password });
    },
  });
  await completing;
  return run;
}

// NB. Each CLI run starts tsx (seconds on a loaded 2-core machine), hence the long timeout.
describe('lapse login / whoami / logout against a real server', { timeout: 120_000 }, () => {
  let idp: TestOidcProvider;
  let opened: OpenedStore;
  let t: TestEngine;
  let app: ApiServer;
  let server = '';
  const dir = mkdtempSync(join(tmpdir(), 'lapse-cli-login-'));

  beforeAll(async () => {
    idp = await startOidcProvider({ users: { alice: { groups: ['sre', 'oncall'] }, root: { groups: ['admins'] } } });
    writeFileSync(join(dir, 'secret'), idp.clientSecret);
    opened = await openTestStore('pglite');
    t = await startEngine(opened.store, {
      yaml: configWithAuth(`oidc:\n  issuer: ${idp.issuer}\n  clientId: lapse\n  clientSecret: \${file:${join(dir, 'secret')}}\n  allowInsecureHttp: true`),
    });
    app = await buildApiServer({ engine: t.engine, auth: authFor(t.engine), version: 'test' });
    server = await app.listen({ port: 0, host: '127.0.0.1' });
    await createLocalUser(opened.store, 'carol', ['security']);
  });
  afterAll(async () => {
    await app?.close();
    await t?.stop();
    await opened?.close();
    await idp?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('signs in through the browser (OIDC), saves a 0600 credentials file, and whoami shows the user', async () => {
    const configDir = join(dir, 'alice');
    const run = await loginThroughBrowser(configDir, server, 'alice');
    expect(run.code, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ server, user: 'alice', expiresAt: expect.any(String) });
    const path = join(configDir, 'credentials.json');
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(statSync(configDir).mode & 0o777).toBe(0o700);
    const file = JSON.parse(readFileSync(path, 'utf8')) as { current: string; servers: Record<string, { token: string; user: string; savedAt: string }> };
    expect(file.current).toBe(server);
    expect(file.servers[server]).toMatchObject({ token: expect.stringMatching(/^lapse_/), user: 'alice' });
    const who = await lapse(configDir, ['--json', 'whoami']);
    expect(who.code, who.stderr).toBe(0);
    expect(JSON.parse(who.stdout)).toMatchObject({
      server,
      principal: { id: 'alice', groups: ['sre', 'oncall'] },
      scopes: ['read', 'request', 'approve'],
      via: 'token',
    });
  });

  it('signs a local user in through the sign-in form, and an admin gets the admin scope', async () => {
    const configDir = join(dir, 'carol');
    const run = await loginThroughBrowser(configDir, server, 'carol', PASSWORD);
    expect(run.code, run.stderr).toBe(0);
    expect(loadCredentials(undefined, { LAPSE_CONFIG_DIR: configDir })).toMatchObject({ server, user: 'carol' });
    const rootDir = join(dir, 'root');
    expect((await loginThroughBrowser(rootDir, server, 'root')).code).toBe(0);
    // signing in again replaces the saved token and revokes the old one
    const first = loadCredentials(undefined, { LAPSE_CONFIG_DIR: rootDir })!.token;
    expect((await loginThroughBrowser(rootDir, server, 'root')).code).toBe(0);
    expect(loadCredentials(undefined, { LAPSE_CONFIG_DIR: rootDir })!.token).not.toBe(first);
    expect((await fetch(`${server}/api/v1/auth/session`, { headers: { authorization: `Bearer ${first}` } })).status).toBe(401);
    const who = JSON.parse((await lapse(rootDir, ['--json', 'whoami'])).stdout) as { scopes: string[]; roles: string[] };
    expect(who.scopes).toContain('admin');
    expect(who.roles).toEqual(['admin']);
  });

  it('logs out: the token is revoked on the server and forgotten here', async () => {
    const configDir = join(dir, 'alice');
    const { token } = loadCredentials(undefined, { LAPSE_CONFIG_DIR: configDir })!;
    const out = await lapse(configDir, ['--json', 'logout']);
    expect(out.code, out.stderr).toBe(0);
    expect(JSON.parse(out.stdout)).toMatchObject({ revoked: true, forgotten: true });
    expect((await fetch(`${server}/api/v1/auth/session`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(401);
    const who = await lapse(configDir, ['--json', 'whoami']);
    expect(who.code).toBe(6);
    expect(JSON.parse(who.stderr).error.code).toBe('unauthenticated');
  });

  it('stores a given token after checking it (--with-token), and refuses a bad one (exit 6)', async () => {
    const configDir = join(dir, 'token-user');
    const created = await fetch(`${server}/api/v1/tokens`, {
      method: 'POST',
      headers: { authorization: `Bearer ${loadCredentials(undefined, { LAPSE_CONFIG_DIR: join(dir, 'root') })!.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'ci', scopes: ['read'], expiresIn: '7d' }),
    });
    const { token } = (await created.json()) as { token: string };
    const ok = await lapse(configDir, ['--json', 'login', '--server', server, '--with-token'], { stdin: `${token}\n` });
    expect(ok.code, ok.stderr).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({ user: 'root' });
    const bad = await lapse(join(dir, 'bad'), ['--json', 'login', '--server', server, '--token', `lapse_${'x'.repeat(43)}`]);
    expect(bad.code).toBe(6);
    expect(JSON.parse(bad.stderr).error.code).toBe('unauthenticated');
  });

  it('honours LAPSE_TOKEN + LAPSE_SERVER, and refuses a credentials file others can read', async () => {
    const rootDir = join(dir, 'root');
    const { token } = loadCredentials(undefined, { LAPSE_CONFIG_DIR: rootDir })!;
    const env = await lapse(join(dir, 'empty'), ['--json', 'whoami'], { env: { LAPSE_TOKEN: token, LAPSE_SERVER: server } });
    expect(env.code, env.stderr).toBe(0);
    expect(JSON.parse(env.stdout)).toMatchObject({ principal: { id: 'root' } });
    chmodSync(join(rootDir, 'credentials.json'), 0o644);
    const refused = await lapse(rootDir, ['whoami']);
    expect(refused.code).toBe(6);
    expect(refused.stderr).toMatch(/can be read by other users.*chmod 600/s);
  });

  it('reports an unreachable server with exit 5', async () => {
    const run = await lapse(join(dir, 'nowhere'), ['--json', 'login', '--server', 'http://127.0.0.1:9', '--token', 'lapse_x']);
    expect(run.code).toBe(5);
    expect(JSON.parse(run.stderr).error.code).toBe('server_unreachable');
  });
});
