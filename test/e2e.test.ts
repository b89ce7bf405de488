import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { offline } from './support/environment.js';
import { completeLoginAt } from './support/oidc-login.js';
import { startOidcProvider, type TestOidcProvider } from './support/oidc-provider.js';
import { backends, createServerDatabase, type ServerDatabase } from './support/stores.js';

/**
 * The whole product as people use it: `lapse serve` as its own process (embedded database, and
 * PostgreSQL), two people signing in through a real OpenID provider with `lapse login`, one
 * requesting access that needs the other's approval, the other approving, the grant going active
 * and then expiring on time: every step through the `lapse` command.
 */

const CONFIG = (issuer: string, secretFile: string) => `
version: 1
roles:
  admins: { groups: [admins] }
auth:
  oidc:
    issuer: ${issuer}
    clientId: lapse
    clientSecret: \${file:${secretFile}}
    allowInsecureHttp: true
targets:
  prod-db:
    connector: noop
    entitlements:
      admin: { description: full control, settings: { issueCredentials: true } }
policies:
  - name: sre-admin
    subjects: { groups: [sre] }
    entitlements: ["prod-db/admin"]
    duration: { default: 15s, max: 1h }
    require: { justification: { minLength: 10 } }
    approval:
      pendingTimeout: 10m
      stages:
        - { name: leads, approvers: { groups: [sre-leads] }, quorum: 1 }
scheduler: { pollInterval: 200ms, connectorTimeout: 5s, provisionAttempts: 3, revokeBackoff: { min: 50ms, max: 1s } }
`;

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function lapse(home: string, args: string[], options: { onStderr?: (text: string) => void } = {}): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
      env: { PATH: process.env.PATH, HOME: home, LAPSE_CONFIG_DIR: join(home, 'lapse'), DISPLAY: '', WAYLAND_DISPLAY: '' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      options.onStderr?.(stderr);
    });
    child.stdin.end();
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const json = (run: Run) => {
  expect(run.code, run.stderr).toBe(0);
  return JSON.parse(run.stdout) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- CLI output, checked field by field
};

/** `lapse serve` in its own process; resolves with its address once it logs that it is running. */
async function serve(configPath: string, dataDir: string, databaseUrl: string | null): Promise<{ url: string; process: ChildProcess; log: string[] }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'serve', '--config', configPath, '--data-dir', dataDir, '--port', '0'], {
    env: { PATH: process.env.PATH, HOME: dataDir, ...(databaseUrl ? { DATABASE_URL: databaseUrl } : {}) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const log: string[] = [];
  child.stderr!.on('data', (chunk: Buffer) => log.push(chunk.toString()));
  const lines = createInterface({ input: child.stdout! });
  const url = await new Promise<string>((resolve, reject) => {
    lines.on('line', (line) => {
      log.push(line);
      const entry = JSON.parse(line) as { msg?: string; address?: string };
      if (entry.msg === 'lapse is running' && entry.address) resolve(entry.address);
    });
    child.once('exit', (code) => reject(new Error(`lapse serve exited with ${code}:\n${log.join('\n')}`)));
  });
  return { url, process: child, log };
}

describe.each(backends())('end to end: lapse serve, OIDC sign-in and the lapse command [%s]', { timeout: 180_000 }, (backend) => {
  let idp: TestOidcProvider;
  let database: ServerDatabase | null = null;
  let server: Awaited<ReturnType<typeof serve>>;
  const dir = mkdtempSync(join(tmpdir(), `lapse-e2e-${backend}-`));
  const home = { alice: join(dir, 'alice'), bob: join(dir, 'bob') };

  beforeAll(async () => {
    idp = await startOidcProvider({ users: { alice: { groups: ['sre'] }, bob: { groups: ['sre-leads'] } } });
    writeFileSync(join(dir, 'client-secret'), idp.clientSecret, { mode: 0o600 });
    writeFileSync(join(dir, 'lapse.yaml'), CONFIG(idp.issuer, join(dir, 'client-secret')));
    if (backend === 'postgres') database = await createServerDatabase();
    server = await serve(join(dir, 'lapse.yaml'), join(dir, 'data'), database?.url ?? null);
  }, 120_000);

  afterAll(async () => {
    if (server?.process.exitCode === null) {
      server.process.kill('SIGTERM');
      await new Promise((resolve) => server.process.once('exit', resolve));
    }
    await idp?.close();
    await database?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  /** `lapse login --no-browser`, with the printed link completed as the user's browser would. */
  async function login(who: 'alice' | 'bob'): Promise<Run> {
    let completing: Promise<unknown> | undefined;
    const run = await lapse(home[who], ['--json', 'login', '--server', server.url, '--no-browser'], {
      onStderr: (text) => {
        const link = /(http:\/\/\S+\/auth\/cli\?\S+)/.exec(text)?.[1];
        if (link && !completing) completing = completeLoginAt(link, who);
      },
    });
    await completing;
    return run;
  }

  it('signs in two people, requests, approves as the other, and the grant goes active and then expires', async () => {
    expect((await login('alice')).code).toBe(0);
    expect((await login('bob')).code).toBe(0);
    expect(json(await lapse(home.bob, ['--json', 'whoami']))).toMatchObject({ principal: { id: 'bob', groups: ['sre-leads'] } });

    // alice asks and waits; bob finds it in his inbox and approves.
    const asking = lapse(home.alice, [
      '--json',
      'request',
      'prod-db/admin',
      '--for',
      '15s',
      '--reason',
      'rotate the replication slot',
      '--wait',
      '--timeout',
      '2m',
    ]);
    let requestId = '';
    for (let i = 0; i < 60 && !requestId; i += 1) {
      const inbox = json(await lapse(home.bob, ['--json', 'ls', '--to-approve']));
      requestId = (inbox.requests as { id: string; principal: { id: string } }[]).find((r) => r.principal.id === 'alice')?.id ?? '';
    }
    expect(requestId).toMatch(/^req_/);
    const self = await lapse(home.alice, ['--json', 'approve', requestId]);
    expect(self.code, 'self-approval is refused').toBe(6);
    expect(json(await lapse(home.bob, ['--json', 'approve', requestId, '--comment', 'go ahead']))).toMatchObject({ effect: 'approved' });

    const granted = json(await asking);
    expect(granted).toMatchObject({ outcome: 'active', grant: { status: 'active', principalId: 'alice' } });
    expect(granted.credentials.password.length).toBeGreaterThanOrEqual(24);
    const grantId = granted.grant.id as string;
    expect(new Date(granted.grant.expiresAt).getTime() - new Date(granted.grant.activatedAt).getTime()).toBe(15_000);

    // Credentials were handed out once; bob cannot see alice's grant at all.
    expect((await lapse(home.alice, ['--json', 'credentials', grantId])).code).toBe(3);
    expect((await lapse(home.bob, ['--json', 'status', grantId])).code).toBe(3);

    // It expires on time, by itself.
    let status = json(await lapse(home.alice, ['--json', 'status', grantId]));
    expect(status.grant.status).toBe('active');
    const deadline = Date.now() + 60_000;
    while (status.grant.status !== 'revoked' && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      status = json(await lapse(home.alice, ['--json', 'status', grantId]));
    }
    expect(status.grant).toMatchObject({ status: 'revoked', endReason: 'expired' });
    expect(new Date(status.grant.endedAt).getTime()).toBeGreaterThanOrEqual(new Date(status.grant.expiresAt).getTime());
    expect(status.timeline.map((e: { action: string }) => e.action)).toEqual(
      expect.arrayContaining([
        'request.pending',
        'review.approve',
        'request.approved',
        'grant.activated',
        'grant.credentials_fetched',
        'grant.expired',
        'grant.revoked',
      ]),
    );
  });
});

if (offline()) describe.skip('end to end [postgres] (offline run)', () => {});
