import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TargetConfig } from '../../config/types.js';
import { TokenSystem } from './testing/token-system.js';
import { WebhookConnector } from './webhook-connector.js';

/**
 * The vault's `webhook` rotator against a local receiver that checks every signature and refuses
 * replays (TokenSystem): rotate sets the password there, verify asks whether it logs in, and the
 * password never comes back in an error.
 */
const SECRET = randomBytes(32).toString('hex');
const system = new TokenSystem(SECRET);
const rotation = new WebhookConnector().rotation;
let url = '';
const signal = () => AbortSignal.timeout(5_000);

function target(settings: Record<string, unknown> = {}): TargetConfig {
  return {
    name: 'console',
    connector: 'webhook',
    description: '',
    settings: { url, secret: SECRET, timeoutMs: 2_000, maxAttempts: 3, ...settings },
    labels: {},
    entitlements: new Map([['root', { name: 'root', target: 'console', description: '', settings: {}, labels: {}, checkout: { account: 'root' } as never }]]),
  };
}

beforeAll(async () => {
  system.server.listen(0, '127.0.0.1');
  await new Promise((resolve) => system.server.once('listening', resolve));
  url = `http://127.0.0.1:${(system.server.address() as AddressInfo).port}/lapse`;
});
afterAll(() => system.server.close());

describe('webhook password rotation (vault)', () => {
  it('rotates through a signed delivery, verifies with a second one, and ends sessions', async () => {
    system.passwords.set('root', 'Initial-Root-Password');
    expect(await rotation.verifyPassword(target(), 'root', 'Initial-Root-Password', signal())).toBe(true);
    const next = `Rotated-${randomBytes(8).toString('hex')}`;
    const before = system.received.length;
    await rotation.rotatePassword(target(), 'root', next, signal());
    expect(system.passwords.get('root')).toBe(next);
    expect(await rotation.verifyPassword(target(), 'root', next, signal())).toBe(true);
    expect(await rotation.verifyPassword(target(), 'root', 'Initial-Root-Password', signal())).toBe(false);
    const [rotate] = system.received.slice(before);
    expect(rotate!.headers['lapse-signature']).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
    expect(rotate!.delivery).toMatchObject({ version: 1, operation: 'rotate', account: 'root', password: next, target: { name: 'console' } });
    expect(system.sessions.get('root')).toBeGreaterThan(0);
    await rotation.endSessions(target(), 'root', signal());
    expect(system.sessions.has('root')).toBe(false);
    expect(rotation.loginDetails(target(), 'root')).toEqual({ target: 'console' });
  });

  it('a rotate the receiver refuses fails clearly and never quotes the password back', async () => {
    const echo = `Secret-${randomBytes(8).toString('hex')}`;
    // A careless receiver that echoes the request in its error answer.
    const { createServer } = await import('node:http');
    const careless = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () =>
        res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ got: (JSON.parse(body) as { password: string }).password })),
      );
    }).listen(0, '127.0.0.1');
    await new Promise((resolve) => careless.once('listening', resolve));
    try {
      const carelessUrl = `http://127.0.0.1:${(careless.address() as AddressInfo).port}/`;
      const error = await rotation.rotatePassword(target({ url: carelessUrl }), 'root', echo, signal()).catch((e: Error) => e);
      expect(String(error)).toMatch(/webhook target console: rotate was refused: HTTP 400/);
      expect(String(error)).not.toContain(echo);
      expect(String(error)).toContain('[password]');
    } finally {
      careless.close();
    }
  });

  it('a verify answer that is not { accepted } is "cannot tell", not "refused"', async () => {
    system.script.push(200);
    await expect(rotation.verifyPassword(target(), 'root', 'whatever-password', signal())).rejects.toThrow(/the answer to verify does not match the schema/);
  });

  it('retries a receiver that is briefly down, then gives up clearly', async () => {
    system.passwords.set('root', 'x');
    system.script.push(503);
    await rotation.rotatePassword(target(), 'root', 'After-A-Retry-123', signal());
    expect(system.passwords.get('root')).toBe('After-A-Retry-123');
    system.script.push(503, 503, 503);
    await expect(rotation.rotatePassword(target(), 'root', 'Never-Set-456', signal())).rejects.toThrow(/rotate failed after 3 attempts/);
    expect(system.passwords.get('root')).toBe('After-A-Retry-123');
  });

  it('checks the account name', () => {
    expect(rotation.validateAccount(target(), 'root', 'where')).toEqual([]);
    expect(rotation.validateAccount(target(), '', 'where')).toEqual([expect.stringMatching(/must be a non-empty account name/)]);
    expect(rotation.validateAccount(target(), 'a\u0007b', 'where')).toEqual([expect.stringMatching(/control character/)]);
  });
});
