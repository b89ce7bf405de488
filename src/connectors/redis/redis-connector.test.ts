import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { EntitlementConfig, TargetConfig } from '../../config/types.js';
import { newId } from '../../domain/ids.js';
import { offline } from '../../../test/support/environment.js';
import { connectorConformance } from '../testing/conformance.js';
import type { GrantSpec, ProvisionResult } from '../types.js';
import { RedisConnector } from './redis-connector.js';

/**
 * Against the real Redis (LAPSE_TEST_REDIS_HOST / LAPSE_TEST_REDIS_PORT, default 127.0.0.1:6379;
 * the `default` user must be allowed ACL commands so the test can make Lapse's own user), with
 * the real `redis-cli` as the requester's client.
 */
const HOST = process.env.LAPSE_TEST_REDIS_HOST ?? '127.0.0.1';
const PORT = Number(process.env.LAPSE_TEST_REDIS_PORT ?? 6379);
const run = randomBytes(4).toString('hex');
const PREFIX = `lapsetest${run}`;
const LAPSE_USER = `lapse-admin-${run}`;
const LAPSE_PASSWORD = randomBytes(16).toString('hex');
const execFileAsync = promisify(execFile);

const connector = new RedisConnector();

function target(settings: Record<string, unknown> = {}, entitlementSettings: Record<string, unknown> = {}): TargetConfig {
  const entitlement: EntitlementConfig = {
    name: 'readonly',
    target: 'cache',
    description: '',
    settings: { keys: [`${PREFIX}:*`], channels: [`${PREFIX}:*`], commands: ['+@read', '+@pubsub', '-@dangerous'], ...entitlementSettings },
    labels: {},
  };
  return {
    name: 'cache',
    connector: 'redis',
    description: '',
    settings: { host: HOST, port: PORT, username: LAPSE_USER, password: LAPSE_PASSWORD, timeoutMs: 5_000, ...settings },
    labels: {},
    entitlements: new Map([['readonly', entitlement]]),
  };
}

function grant(overrides: Partial<GrantSpec> = {}): GrantSpec {
  const t = overrides.target ?? target();
  return {
    grantId: newId('grant'),
    principalId: `user-${randomBytes(3).toString('hex')}`,
    target: t,
    entitlement: t.entitlements.get('readonly')!,
    durationMs: 60_000,
    notAfter: new Date(Date.now() + 60_000),
    parameters: {},
    ...overrides,
  };
}

/** Runs the real redis-cli as the requester; `authFailed` if the login was refused. */
async function redisCli(credentials: Readonly<Record<string, string>>, ...command: string[]) {
  const { stdout, stderr } = await execFileAsync(
    'redis-cli',
    ['-h', HOST, '-p', String(PORT), '--user', credentials.username!, '--pass', credentials.password!, '--no-auth-warning', ...command],
    { timeout: 10_000 },
  );
  return { out: stdout.trim(), authFailed: /AUTH failed|WRONGPASS/.test(stderr + stdout) };
}

async function canRead(provisioned: ProvisionResult): Promise<boolean> {
  const { out, authFailed } = await redisCli(provisioned.credentials!, 'GET', `${PREFIX}:greeting`);
  return !authFailed && out === 'hello';
}

describe.skipIf(offline())('redis connector against the real server', () => {
  let admin: Redis;

  beforeAll(async () => {
    admin = new Redis({ host: HOST, port: PORT, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    admin.on('error', () => undefined);
    try {
      await admin.connect();
      await admin.ping();
    } catch (error) {
      throw new Error(
        `Redis is not reachable at ${HOST}:${PORT} (${(error as Error).message}); start it, point LAPSE_TEST_REDIS_HOST/LAPSE_TEST_REDIS_PORT at one, or run npm run test:offline to skip`,
      );
    }
    // Lapse's own user gets exactly the privileges docs/connectors/redis.md lists, nothing more.
    await admin.call('ACL', 'SETUSER', LAPSE_USER, 'reset', 'on', `>${LAPSE_PASSWORD}`, '+acl|list', '+acl|setuser', '+acl|deluser', '+client|kill');
    await admin.set(`${PREFIX}:greeting`, 'hello');
    await admin.set(`secret${run}`, 'forbidden');
  });

  afterAll(async () => {
    if (admin.status !== 'ready') return;
    const users = (await admin.call('ACL', 'USERS')) as string[];
    const mine = users.filter((u) => u.includes(run) || (u.startsWith('lapse_grt_') && u.includes(':cache:readonly:user-')));
    if (mine.length > 0) await admin.call('ACL', 'DELUSER', ...mine);
    await admin.del(`${PREFIX}:greeting`, `secret${run}`, `${PREFIX}:written`);
    admin.disconnect();
  });

  connectorConformance({
    name: 'redis',
    connector: () => connector,
    grant,
    hasAccess: async (_grant, provisioned) => canRead(provisioned),
    createUnmanaged: async () => {
      const name = `outsider-${run}-${randomBytes(3).toString('hex')}`;
      await admin.call('ACL', 'SETUSER', name, 'on', '>outsider-password', `~${PREFIX}:*`, '+@read');
      return name;
    },
  });

  it('lets redis-cli read permitted keys and refuses other keys and commands', async () => {
    const g = grant();
    const provisioned = await connector.provision(g, AbortSignal.timeout(10_000));
    try {
      expect(provisioned.credentials).toMatchObject({ username: expect.stringMatching(/^lapse_grt_/), host: HOST, port: String(PORT) });
      expect(JSON.stringify(provisioned.handle)).not.toContain(provisioned.credentials!.password);
      expect(await redisCli(provisioned.credentials!, 'GET', `${PREFIX}:greeting`)).toEqual({ out: 'hello', authFailed: false });
      expect((await redisCli(provisioned.credentials!, 'GET', `secret${run}`)).out).toMatch(/NOPERM.*key/i);
      expect((await redisCli(provisioned.credentials!, 'SET', `${PREFIX}:written`, 'x')).out).toMatch(/NOPERM.*'set'/);
      expect((await redisCli(provisioned.credentials!, 'KEYS', '*')).out).toMatch(/NOPERM.*'keys'/);
      expect((await redisCli(provisioned.credentials!, 'ACL', 'SETUSER', 'evil', 'on', 'nopass', '+@all')).out).toMatch(/NOPERM/);
      expect(await admin.exists(`${PREFIX}:written`)).toBe(0);
    } finally {
      await connector.revoke(g, provisioned.handle, AbortSignal.timeout(10_000));
    }
  });

  it('after revoke, a new login fails and an already-connected redis-cli is disconnected', async () => {
    const g = grant();
    const provisioned = await connector.provision(g, AbortSignal.timeout(10_000));
    const { username, password } = provisioned.credentials!;
    const subscriber = spawn('redis-cli', [
      '-h',
      HOST,
      '-p',
      String(PORT),
      '--user',
      username!,
      '--pass',
      password!,
      '--no-auth-warning',
      'SUBSCRIBE',
      `${PREFIX}:news`,
    ]);
    let output = '';
    subscriber.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    subscriber.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const exited = once(subscriber, 'exit');
    try {
      await expect.poll(() => output, { timeout: 5_000 }).toContain(`${PREFIX}:news`);
      expect(subscriber.exitCode).toBeNull();
      const started = Date.now();
      await connector.revoke(g, provisioned.handle, AbortSignal.timeout(10_000));
      await Promise.race([
        exited,
        new Promise((_, reject) => setTimeout(() => reject(new Error(`redis-cli still connected after revoke; output: ${output}`)), 5_000)),
      ]);
      expect(Date.now() - started).toBeLessThan(5_000);
      expect(output).toMatch(/Server closed the connection/);
      expect((await redisCli(provisioned.credentials!, 'GET', `${PREFIX}:greeting`)).authFailed).toBe(true);
    } finally {
      subscriber.kill();
    }
  });

  it('sets a fresh password on a repeated provision, so only the latest credential works', async () => {
    const g = grant();
    const first = await connector.provision(g, AbortSignal.timeout(10_000));
    const second = await connector.provision(g, AbortSignal.timeout(10_000));
    try {
      expect(second.credentials!.password).not.toBe(first.credentials!.password);
      expect(second.handle).toEqual(first.handle);
      expect(await canRead(first)).toBe(false);
      expect(await canRead(second)).toBe(true);
    } finally {
      await connector.revoke(g, second.handle, AbortSignal.timeout(10_000));
    }
  });

  it('names hostile principals safely and maps them back exactly', async () => {
    const principalId = `o'brien"; FLUSHALL \\ ${run} ünï 🚀 nopass >pw`;
    const g = grant({ principalId });
    const provisioned = await connector.provision(g, AbortSignal.timeout(10_000));
    try {
      expect(await canRead(provisioned)).toBe(true);
      const listed = await connector.listAccess(g.target, AbortSignal.timeout(10_000));
      expect(listed).toContainEqual({ account: provisioned.credentials!.username, principalId, entitlement: 'readonly', grantId: g.grantId });
      const rules = (await admin.call('ACL', 'GETUSER', provisioned.credentials!.username!)) as unknown[];
      expect(JSON.stringify(rules)).not.toMatch(/nopass|allkeys|"~\*"/);
      expect(await admin.get(`${PREFIX}:greeting`)).toBe('hello');
    } finally {
      await connector.revoke(g, provisioned.handle, AbortSignal.timeout(10_000));
    }
  });

  it("reports only its own target's users when several targets share one server", async () => {
    const g = grant();
    const provisioned = await connector.provision(g, AbortSignal.timeout(10_000));
    try {
      const sibling = { ...target(), name: 'cache-eu' };
      expect((await connector.listAccess(sibling, AbortSignal.timeout(10_000))).some((a) => a.grantId === g.grantId)).toBe(false);
      expect((await connector.listAccess(target(), AbortSignal.timeout(10_000))).some((a) => a.grantId === g.grantId)).toBe(true);
    } finally {
      await connector.revoke(g, provisioned.handle, AbortSignal.timeout(10_000));
    }
  });

  it('refuses hostile entitlement settings before touching Redis', () => {
    const hostile = target(
      {},
      { keys: ['*', 'app:* nopass', '>hunter2'], channels: ['news\n+@all'], commands: ['+@read', 'nopass', '+@all', 'allkeys', '+get;flushall'] },
    );
    expect(connector.validateSettings(hostile)).toEqual([
      'targets.cache.entitlements.readonly.settings.keys[0]: "*" starts with a wildcard; start with a literal prefix (e.g. "app:*"), or set allKeys: true for every key',
      expect.stringMatching(/^targets\.cache\.entitlements\.readonly\.settings\.keys\[1\]: "app:\* nopass" is not a key pattern/),
      expect.stringMatching(/^targets\.cache\.entitlements\.readonly\.settings\.keys\[2\]: ">hunter2" is not a key pattern/),
      expect.stringMatching(/^targets\.cache\.entitlements\.readonly\.settings\.channels\[0\]: "news\\u000a\+@all" is not a channel pattern/),
      expect.stringMatching(/commands\[1\]: "nopass" is not a command rule/),
      expect.stringMatching(/commands\[2\]: "\+@all" grants administrative or destructive commands; set allowDangerousCommands: true/),
      expect.stringMatching(/commands\[3\]: "allkeys" is not a command rule/),
      expect.stringMatching(/commands\[4\]: "\+get;flushall" is not a command rule/),
    ]);
    expect(connector.validateSettings(target({}, { mode: 'elevate' }))).toEqual([expect.stringMatching(/settings\.mode: only "ephemeral" is supported/)]);
    const problems = connector.validateSettings(target({ port: 70_000, tls: { verify: false }, pasword: 'x' }));
    expect(problems.sort()).toEqual([
      'targets.cache.settings.port: must be a port number from 1 to 65535',
      expect.stringMatching(/^targets\.cache\.settings\.tls\.verify: unknown setting/),
      expect.stringMatching(/^targets\.cache\.settings: unknown setting "pasword"/),
    ]);
  });

  it('reports standing access by users made outside Lapse, and will not delete the default user', async () => {
    const listed = await connector.listAccess(target(), AbortSignal.timeout(10_000));
    // This server's `default` user is nopass with ~*: exactly the standing access reconciliation is for.
    const fallback = listed.find((a) => a.account === 'default');
    if (fallback) {
      await expect(connector.removeAccess(target(), fallback, AbortSignal.timeout(10_000))).rejects.toThrow(/will not delete the user "default"/);
    }
    await expect(
      connector.removeAccess(target(), { account: LAPSE_USER, principalId: LAPSE_USER, entitlement: 'readonly', grantId: null }, AbortSignal.timeout(10_000)),
    ).rejects.toThrow(/which Lapse itself logs in as/);
    expect(listed.some((a) => a.account === LAPSE_USER)).toBe(false);
  });

  it("checkTarget names the privilege Lapse's own user lacks", async () => {
    const restricted = `lapse-restricted-${run}`;
    const password = randomBytes(12).toString('hex');
    const as = target({ username: restricted, password });
    await admin.call('ACL', 'SETUSER', restricted, 'reset', 'on', `>${password}`, '+acl|list');
    await expect(connector.checkTarget(as, AbortSignal.timeout(10_000))).rejects.toThrow(/may not run ACL SETUSER \(permission \+acl\|setuser is missing\)/);
    await admin.call('ACL', 'SETUSER', restricted, '+acl|setuser', '+acl|deluser');
    await expect(connector.checkTarget(as, AbortSignal.timeout(10_000))).rejects.toThrow(/may not run CLIENT KILL \(permission \+client\|kill is missing\)/);
    await admin.call('ACL', 'SETUSER', restricted, '+client|kill');
    await connector.checkTarget(as, AbortSignal.timeout(10_000));
    expect((await admin.call('ACL', 'USERS')) as string[]).not.toContainEqual(expect.stringMatching(/^lapse_probe_/));
  });

  it('fails clearly, without the password, when Lapse cannot log in or reach the server', async () => {
    const wrong = `wrong-${randomBytes(8).toString('hex')}`;
    const error = await connector.checkTarget(target({ password: wrong }), AbortSignal.timeout(10_000)).catch((e: unknown) => e as Error);
    expect(String(error)).toMatch(/redis target cache: could not check the privileges Lapse needs: WRONGPASS/);
    expect(JSON.stringify(error)).not.toContain(wrong);
    await expect(connector.listAccess(target({ port: 1 }), AbortSignal.timeout(10_000))).rejects.toThrow(/could not list ACL users.*ECONNREFUSED/);
  });

  it('gives up at the deadline even when the server never answers', async () => {
    const { createServer } = await import('node:net');
    const silent = createServer(() => undefined).listen(0, '127.0.0.1');
    await once(silent, 'listening');
    try {
      const port = (silent.address() as { port: number }).port;
      const started = Date.now();
      await expect(connector.provision(grant({ target: target({ port }) }), AbortSignal.timeout(300))).rejects.toThrow(/before the deadline/);
      expect(Date.now() - started).toBeLessThan(2_000);
    } finally {
      silent.close();
    }
  });

  describe('over TLS (a redis-server started by the test with a self-signed certificate)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'lapse-redis-tls-'));
    const tlsPort = 20_000 + Math.floor(Math.random() * 20_000);
    let server: ChildProcess;
    let cert = '';

    beforeAll(async () => {
      execFileSync(
        'openssl',
        [
          'req',
          '-x509',
          '-newkey',
          'ec',
          '-pkeyopt',
          'ec_paramgen_curve:prime256v1',
          '-nodes',
          '-days',
          '1',
          '-subj',
          '/CN=localhost',
          '-addext',
          'subjectAltName=IP:127.0.0.1',
          '-keyout',
          join(dir, 'key.pem'),
          '-out',
          join(dir, 'cert.pem'),
        ],
        { stdio: 'ignore' },
      );
      cert = readFileSync(join(dir, 'cert.pem'), 'utf8');
      server = spawn(
        'redis-server',
        [
          '--port',
          '0',
          '--tls-port',
          String(tlsPort),
          '--bind',
          '127.0.0.1',
          '--tls-cert-file',
          join(dir, 'cert.pem'),
          '--tls-key-file',
          join(dir, 'key.pem'),
          '--tls-auth-clients',
          'no',
          '--save',
          '',
          '--appendonly',
          'no',
          '--dir',
          dir,
        ],
        { stdio: 'ignore' },
      );
      const ready = Date.now();
      while (Date.now() - ready < 10_000) {
        const up = await execFileAsync('redis-cli', ['--tls', '--insecure', '-p', String(tlsPort), 'PING']).then(
          (r) => r.stdout.trim() === 'PONG',
          () => false,
        );
        if (up) break;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    });
    afterAll(() => {
      server?.kill();
      rmSync(dir, { recursive: true, force: true });
    });

    const tlsTarget = (tls: Record<string, unknown>) => target({ port: tlsPort, username: 'default', password: undefined, tls });

    it('verifies the server certificate by default, trusts a configured CA, and skips only when told (with a warning)', async () => {
      await expect(connector.checkTarget(tlsTarget({ enabled: true }), AbortSignal.timeout(10_000))).rejects.toThrow(/self.signed certificate/);
      const t = tlsTarget({ ca: cert });
      await connector.checkTarget(t, AbortSignal.timeout(10_000));
      const g = grant({ target: t });
      const provisioned = await connector.provision(g, AbortSignal.timeout(10_000));
      expect(provisioned.credentials).toMatchObject({ tls: 'true', port: String(tlsPort) });
      await connector.revoke(g, provisioned.handle, AbortSignal.timeout(10_000));
      const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
      try {
        await connector.checkTarget(tlsTarget({ enabled: true, insecureSkipVerify: true }), AbortSignal.timeout(10_000));
        expect(warn).toHaveBeenCalledWith(expect.stringMatching(/insecureSkipVerify: true; the server certificate is NOT verified/));
      } finally {
        warn.mockRestore();
      }
    });
  });
});
