import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPgliteStore } from '../../../test/support/stores.js';
import { parseConfig } from '../../config/index.js';
import { connectorRegistry, NoopConnector, SshConnector } from '../../connectors/index.js';
import { newId } from '../../domain/ids.js';
import { Engine } from '../../engine/index.js';
import type { Store } from '../../store/index.js';
import { buildApiServer, type ApiServer } from '../index.js';
import { authFor } from '../../../test/support/auth-service.js';

describe('what sshd hosts fetch: CA key and KRL', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lapse-ssh-routes-'));
  let store: Store;
  let engine: Engine;
  let app: ApiServer;
  const ssh = new SshConnector();

  beforeAll(async () => {
    store = await openPgliteStore();
    const yaml = `
version: 1
targets:
  hosts:
    connector: ssh
    settings: { caKeyPath: ${join(dir, 'ca')}, krlPath: ${join(dir, 'revoked.krl')} }
    entitlements: { login: { settings: { principals: [deploy] } } }
  db:
    connector: noop
    entitlements: { readonly: {} }
`;
    engine = new Engine({ store, config: parseConfig(yaml, 'test.yaml', {}), connectors: connectorRegistry([ssh, new NoopConnector()]) });
    app = await buildApiServer({ engine, auth: authFor(engine), version: 'test' });
  });
  afterAll(async () => {
    await app.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves the CA public key for TrustedUserCAKeys', async () => {
    const res = await app.inject({ method: 'GET', url: '/api/v1/ssh/hosts/ca.pub' });
    expect(res.statusCode).toBe(200);
    expect(res.body).toMatch(/^ssh-ed25519 [A-Za-z0-9+/=]+( .*)?\n$/);
  });

  it('serves the KRL sshd reads, unchanged until a certificate is revoked, with ETags', async () => {
    const first = await app.inject({ method: 'GET', url: '/api/v1/ssh/hosts/krl' });
    expect(first.statusCode).toBe(200);
    expect(first.headers['content-type']).toBe('application/octet-stream');
    expect(first.rawPayload.subarray(0, 8).toString('latin1')).toBe('SSHKRL\n\0');
    const etag = first.headers.etag as string;
    expect((await app.inject({ method: 'GET', url: '/api/v1/ssh/hosts/krl', headers: { 'if-none-match': etag } })).statusCode).toBe(304);

    // Issue a certificate, then revoke it: the KRL served changes and ssh-keygen finds the key in it.
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'user')]);
    const target = engine.config.targets.get('hosts')!;
    const grant = {
      grantId: newId('grant'),
      principalId: 'alice',
      target,
      entitlement: target.entitlements.get('login')!,
      durationMs: 3_600_000,
      notAfter: new Date(Date.now() + 3_600_000),
      parameters: { sshPublicKey: execFileSync('cat', [join(dir, 'user.pub')], { encoding: 'utf8' }).trim() },
    };
    const { credentials, handle } = await ssh.provision(grant, AbortSignal.timeout(10_000));
    writeFileSync(join(dir, 'user-cert.pub'), `${credentials!.certificate}\n`);
    await ssh.revoke(grant, handle, AbortSignal.timeout(10_000));
    const after = await app.inject({ method: 'GET', url: '/api/v1/ssh/hosts/krl', headers: { 'if-none-match': etag } });
    expect(after.statusCode).toBe(200);
    writeFileSync(join(dir, 'served.krl'), after.rawPayload);
    const check = (() => {
      try {
        return execFileSync('ssh-keygen', ['-Q', '-f', join(dir, 'served.krl'), join(dir, 'user-cert.pub')], { encoding: 'utf8' });
      } catch (error) {
        return String((error as { stdout?: string }).stdout);
      }
    })();
    expect(check).toMatch(/REVOKED/);
  });

  it('answers not found for an unknown or non-ssh target', async () => {
    expect((await app.inject({ method: 'GET', url: '/api/v1/ssh/db/krl' })).statusCode).toBe(404);
    expect((await app.inject({ method: 'GET', url: '/api/v1/ssh/nope/ca.pub' })).statusCode).toBe(404);
    expect((await app.inject({ method: 'GET', url: '/api/v1/ssh/..%2Fetc/krl' })).statusCode).toBe(400);
  });
});
