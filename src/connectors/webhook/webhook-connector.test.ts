import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { TargetConfig } from '../../config/types.js';
import { newId } from '../../domain/ids.js';
import { connectorConformance } from '../testing/conformance.js';
import type { GrantSpec } from '../types.js';
import { TokenSystem } from './testing/token-system.js';
import { WebhookConnector } from './webhook-connector.js';

const SECRET = randomBytes(32).toString('hex');

const system = new TokenSystem(SECRET);
let url = '';
const connector = new WebhookConnector();

function target(settings: Record<string, unknown> = {}): TargetConfig {
  return {
    name: 'tickets',
    connector: 'webhook',
    description: '',
    settings: { url, secret: SECRET, timeoutMs: 2_000, maxAttempts: 4, ...settings },
    labels: { env: 'test' },
    entitlements: new Map([['agent', { name: 'agent', target: 'tickets', description: '', settings: { role: 'agent', parameters: ['ticket'] }, labels: {} }]]),
  };
}

function grant(overrides: Partial<GrantSpec> = {}): GrantSpec {
  const t = overrides.target ?? target();
  return {
    grantId: newId('grant'),
    principalId: `user-${randomBytes(3).toString('hex')}`,
    target: t,
    entitlement: t.entitlements.get('agent')!,
    durationMs: 60_000,
    notAfter: new Date(Date.now() + 60_000),
    parameters: {},
    ...overrides,
  };
}

async function whoami(token: string | undefined): Promise<boolean> {
  const response = await fetch(`${url.replace('/lapse', '')}/whoami`, { headers: { authorization: `Bearer ${token}` } });
  return response.status === 200;
}

beforeAll(async () => {
  system.server.listen(0, '127.0.0.1');
  await new Promise((resolve) => system.server.once('listening', resolve));
  url = `http://127.0.0.1:${(system.server.address() as AddressInfo).port}/lapse`;
});
afterAll(() => system.server.close());

connectorConformance({
  name: 'webhook',
  connector: () => connector,
  grant,
  hasAccess: async (_grant, provisioned) => whoami(provisioned.credentials?.token),
  createUnmanaged: async (g) => {
    const principalId = `outsider-${g.grantId}`;
    system.accounts.set(`manual-${principalId}`, { principalId, entitlement: g.entitlement.name, grantId: null, token: randomBytes(8).toString('hex') });
    return principalId;
  },
});

describe('webhook connector', () => {
  it('signs every delivery and sends the documented payload', async () => {
    const g = grant({ parameters: { ticket: 'OPS-1' } });
    const before = system.received.length;
    const provisioned = await connector.provision(g, AbortSignal.timeout(5_000));
    const [entry] = system.received.slice(before);
    expect(entry!.headers['lapse-signature']).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
    expect(entry!.headers['lapse-delivery']).toMatch(/^dlv_[0-9a-f]{32}$/);
    expect(entry!.headers['content-type']).toBe('application/json');
    expect(entry!.delivery).toMatchObject({
      version: 1,
      operation: 'provision',
      target: { name: 'tickets', labels: { env: 'test' } },
      grant: {
        id: g.grantId,
        principalId: g.principalId,
        entitlement: 'agent',
        entitlementSettings: { role: 'agent' },
        parameters: { ticket: 'OPS-1' },
        notAfter: g.notAfter.toISOString(),
      },
    });
    expect(entry!.body).not.toContain(SECRET);
    expect(provisioned).toEqual({ handle: { account: `acct-${g.grantId}` }, credentials: { token: expect.any(String) } });
    await connector.revoke(g, provisioned.handle, AbortSignal.timeout(5_000));
    expect(system.received.at(-1)!.delivery).toMatchObject({ operation: 'revoke', handle: { account: `acct-${g.grantId}` } });
  });

  it('carries hostile principal names and parameters as exact JSON strings', async () => {
    const principalId = `o'brien"; DROP TABLE users; --\n\u0000 ü 🚀 \\ </script>`;
    const g = grant({ principalId, parameters: { ticket: '"},"operation":"remove' } });
    const before = system.received.length;
    const provisioned = await connector.provision(g, AbortSignal.timeout(5_000));
    const delivery = system.received[before]!.delivery;
    expect(delivery).toMatchObject({ operation: 'provision', grant: { principalId, parameters: { ticket: '"},"operation":"remove' } } });
    expect((await connector.listAccess(g.target, AbortSignal.timeout(5_000))).find((a) => a.grantId === g.grantId)).toMatchObject({ principalId });
    await connector.revoke(g, provisioned.handle, AbortSignal.timeout(5_000));
  });

  it('is refused by the receiver when signed with another secret, replayed, or too old', async () => {
    await expect(connector.checkTarget(target({ secret: 'x'.repeat(64) }), AbortSignal.timeout(5_000))).rejects.toThrow(
      /check was refused: HTTP 401: \{"error":"signature does not match"\}/,
    );
    await connector.checkTarget(target(), AbortSignal.timeout(5_000));
    const captured = system.received.at(-1)!;
    const replay = await fetch(url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'lapse-signature': captured.headers['lapse-signature'] as string,
        'lapse-delivery': captured.headers['lapse-delivery'] as string,
      },
      body: captured.body,
    });
    expect(replay.status).toBe(409);
    expect(await replay.json()).toEqual({ error: 'replayed delivery' });
    vi.useFakeTimers({ toFake: ['Date'], now: Date.now() - 10 * 60_000 });
    try {
      await expect(connector.checkTarget(target(), AbortSignal.timeout(5_000))).rejects.toThrow(
        /HTTP 401: \{"error":"timestamp is more than 300 s away from now"\}/,
      );
    } finally {
      vi.useRealTimers();
    }
  });

  it('retries 5xx answers with a fresh delivery id each time, then succeeds', async () => {
    const before = system.received.length;
    system.script.push(500, 503);
    const g = grant();
    const provisioned = await connector.provision(g, AbortSignal.timeout(10_000));
    const attempts = system.received.slice(before);
    expect(attempts).toHaveLength(3);
    expect(new Set(attempts.map((a) => a.headers['lapse-delivery'])).size).toBe(3);
    expect(await whoami(provisioned.credentials?.token)).toBe(true);
    await connector.revoke(g, provisioned.handle, AbortSignal.timeout(5_000));
  });

  it('gives up after maxAttempts with the last failure in the message', async () => {
    const before = system.received.length;
    system.script.push(500, 500);
    await expect(connector.revoke(grant({ target: target({ maxAttempts: 2 }) }), null, AbortSignal.timeout(10_000))).rejects.toThrow(
      /revoke failed after 2 attempts; last: HTTP 500/,
    );
    expect(system.received.length - before).toBe(2);
  });

  it('does not retry a 4xx answer', async () => {
    const before = system.received.length;
    system.script.push(400);
    await expect(connector.provision(grant(), AbortSignal.timeout(10_000))).rejects.toThrow(/provision was refused: HTTP 400: \{"error":"scripted 400"\}/);
    expect(system.received.length - before).toBe(1);
  });

  it('retries an attempt that times out, and stops at the call deadline', async () => {
    const before = system.received.length;
    system.script.push('hang');
    const g = grant({ target: target({ timeoutMs: 200 }) });
    const provisioned = await connector.provision(g, AbortSignal.timeout(5_000));
    expect(system.received.length - before).toBe(2);
    await connector.revoke(g, provisioned.handle, AbortSignal.timeout(5_000));

    system.script.push('hang', 'hang', 'hang', 'hang');
    const started = Date.now();
    await expect(connector.provision(grant({ target: target({ timeoutMs: 10_000 }) }), AbortSignal.timeout(400))).rejects.toMatchObject({
      code: 'connector_timeout',
    });
    expect(Date.now() - started).toBeLessThan(1_500);
    system.script.length = 0;
  });

  it('gives up on an answer that starts and never finishes, at the deadline', async () => {
    const slow = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"handle":');
    });
    slow.listen(0, '127.0.0.1');
    await new Promise((resolve) => slow.once('listening', resolve));
    try {
      const t = target({ url: `http://127.0.0.1:${(slow.address() as AddressInfo).port}/`, timeoutMs: 10_000 });
      const started = Date.now();
      await expect(connector.provision(grant({ target: t }), AbortSignal.timeout(300))).rejects.toMatchObject({ code: 'connector_timeout' });
      expect(Date.now() - started).toBeLessThan(1_500);
    } finally {
      slow.closeAllConnections();
      slow.close();
    }
  });

  it('refuses an answer that does not match the schema', async () => {
    const odd = createServer((_req, res) => res.writeHead(200).end(JSON.stringify({ handle: 'not-an-object', extra: 1 })));
    odd.listen(0, '127.0.0.1');
    await new Promise((resolve) => odd.once('listening', resolve));
    try {
      const t = target({ url: `http://127.0.0.1:${(odd.address() as AddressInfo).port}/` });
      await expect(connector.provision(grant({ target: t }), AbortSignal.timeout(5_000))).rejects.toThrow(/the answer to provision does not match the schema/);
    } finally {
      odd.close();
    }
  });

  it('keeps each grant separate unless the target counts them per principal', () => {
    const g = grant();
    expect(connector.accessKey(g)).toBe(`tickets/${g.grantId}`);
    expect(connector.accessKey({ ...g, target: target({ accessKey: 'principal' }) })).toBe(`tickets/agent/${g.principalId}`);
  });

  it('validates its settings and the request parameters', () => {
    expect(connector.validateSettings(target({ url: 'http://hooks.example.com/lapse' }))).toEqual([
      expect.stringMatching(
        /settings\.url: plain http to hooks\.example\.com would send requests and credentials unencrypted; use https, or set allowInsecureHttp: true/,
      ),
    ]);
    expect(connector.validateSettings(target({ url: 'https://user:pw@hooks.example.com/' }))).toEqual([
      expect.stringMatching(/settings\.url: must not carry credentials/),
    ]);
    expect(connector.validateSettings(target({ url: 'ftp://x' }))).toEqual([expect.stringMatching(/settings\.url: must start with https:\/\//)]);
    expect(connector.validateSettings(target({ secret: 'short', maxAttempts: 50, retries: 3 }))).toEqual([
      expect.stringMatching(/settings\.retries: unknown setting/),
      expect.stringMatching(/settings\.secret: must be a secret reference to at least 32 random characters/),
      'targets.tickets.settings.maxAttempts: must be a whole number from 1 to 10',
    ]);
    expect(connector.validateSettings(target({ url: 'https://hooks.example.com/', tls: { ca: 'not a pem', verify: false } }))).toEqual([
      expect.stringMatching(/settings\.tls\.verify: unknown setting/),
      expect.stringMatching(/settings\.tls\.ca: must be a PEM certificate bundle/),
    ]);
    const t = target();
    expect(connector.validateParameters(t, t.entitlements.get('agent')!, { ticket: 'OPS-1' })).toEqual([]);
    expect(connector.validateParameters(t, t.entitlements.get('agent')!, { sshPublicKey: 'x' })).toEqual([
      'parameters.sshPublicKey: entitlement agent takes ticket',
    ]);
  });

  it('warns when plain http leaves loopback because allowInsecureHttp says so', async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    try {
      const insecure = target({ url: 'http://hooks.example.com/lapse', allowInsecureHttp: true });
      expect(connector.validateSettings(insecure)).toEqual([]);
      await expect(connector.checkTarget(insecure, AbortSignal.abort())).rejects.toMatchObject({ code: 'connector_timeout' });
      expect(warn).toHaveBeenCalledWith(expect.stringMatching(/WARNING: target tickets calls http:\/\/hooks\.example\.com over plain http/));
    } finally {
      warn.mockRestore();
    }
  });

  describe('over https', () => {
    const dir = mkdtempSync(join(tmpdir(), 'lapse-webhook-tls-'));
    let server: ReturnType<typeof createHttpsServer>;
    let httpsUrl = '';
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
      server = createHttpsServer({ key: readFileSync(join(dir, 'key.pem')), cert }, (req, res) => system.server.emit('request', req, res));
      server.listen(0, '127.0.0.1');
      await new Promise((resolve) => server.once('listening', resolve));
      httpsUrl = `https://127.0.0.1:${(server.address() as AddressInfo).port}/lapse`;
    });
    afterAll(() => {
      server.close();
      rmSync(dir, { recursive: true, force: true });
    });

    it('verifies the receiver certificate by default, trusts a configured CA, and skips only when told (with a warning)', async () => {
      await expect(connector.checkTarget(target({ url: httpsUrl, maxAttempts: 1 }), AbortSignal.timeout(5_000))).rejects.toThrow(/self.signed certificate/);
      await connector.checkTarget(target({ url: httpsUrl, tls: { ca: cert } }), AbortSignal.timeout(5_000));
      const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
      try {
        await connector.checkTarget({ ...target({ url: httpsUrl, tls: { insecureSkipVerify: true } }), name: 'skipper' }, AbortSignal.timeout(5_000));
        expect(warn).toHaveBeenCalledWith(expect.stringMatching(/WARNING: target skipper .*insecureSkipVerify: true; the server certificate is NOT verified/));
      } finally {
        warn.mockRestore();
      }
    });
  });
});
