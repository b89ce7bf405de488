import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../../../test/support/engine.js';
import { offline } from '../../../test/support/environment.js';
import { openPgliteStore } from '../../../test/support/stores.js';
import { parseConfig } from '../../config/index.js';
import { isLapseError } from '../../domain/errors.js';
import { Engine } from '../../engine/index.js';
import { getGrant, getRequest, type Store } from '../../store/index.js';
import { connectorRegistry } from '../types.js';
import { SshConnector } from './ssh-connector.js';
import { createUser, deleteUser, freePort, LocalSshd, sshdPath } from './testing/local-sshd.js';

/**
 * The whole path through Lapse's engine: a request carrying the requester's public key, an
 * auto-approved grant, the certificate fetched once, a real ssh login, and the engine's own
 * revocation (early release, and expiry) locking the certificate out through the KRL.
 */
const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), 'lapse-ssh-engine-'));
chmodSync(dir, 0o755);
const user = `lapse_e${randomBytes(3).toString('hex')}`;
const alice = { id: 'alice', kind: 'user' as const, groups: ['sre'] };

const yaml = `
version: 1
targets:
  hosts:
    connector: ssh
    settings:
      caKeyPath: ${join(dir, 'ca')}
      krlPath: ${join(dir, 'revoked.krl')}
      host: 127.0.0.1
    entitlements:
      login: { settings: { principals: [${user}] } }
policies:
  - name: sre-ssh
    subjects: { groups: [sre] }
    entitlements: ["hosts/login"]
    duration: { default: 1h, max: 4h }
    autoApprove: true
scheduler:
  pollInterval: 200ms
  connectorTimeout: 5s
  revokeBackoff: { min: 20ms, max: 200ms }
`;

describe.skipIf(offline())('ssh grants through the engine, with a real sshd', () => {
  let store: Store;
  let engine: Engine;
  let sshd: LocalSshd;
  let keyFile = '';
  let publicKey = '';

  beforeAll(async () => {
    sshdPath();
    keyFile = join(dir, 'id_ed25519');
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', keyFile]);
    publicKey = readFileSync(`${keyFile}.pub`, 'utf8').trim();
    await createUser(user);
    store = await openPgliteStore();
    const config = parseConfig(yaml, 'ssh-engine.yaml', {});
    const connector = new SshConnector();
    await connector.checkTarget(config.targets.get('hosts')!, AbortSignal.timeout(10_000));
    engine = new Engine({ store, config, connectors: connectorRegistry([connector]) });
    await engine.start();
    sshd = await LocalSshd.start({
      dir,
      port: await freePort(),
      trustedCaFile: join(dir, 'ca.pub'),
      krlFile: join(dir, 'revoked.krl'),
      byLoginName: [user],
      byPrincipalsFile: {},
    });
  }, 60_000);

  afterAll(async () => {
    await sshd?.stop();
    await engine?.stop();
    await store?.close();
    await deleteUser(user);
    rmSync(dir, { recursive: true, force: true });
  });

  async function activeGrant(durationMs: number): Promise<string> {
    const { request } = await engine.submit({
      principal: alice,
      target: 'hosts',
      entitlement: 'login',
      durationMs,
      reason: 'INC-7',
      parameters: { sshPublicKey: publicKey },
    });
    const grantId = (await getRequest(store.db, request.id))!.grantId!;
    await waitFor(
      () => getGrant(store.db, grantId),
      (g) => g?.status === 'active',
    );
    return grantId;
  }

  async function loginWith(grantId: string): Promise<boolean> {
    const credentials = await engine.fetchCredentials({ grantId, by: alice });
    const certificateFile = join(dir, `${grantId}-cert.pub`);
    writeFileSync(certificateFile, `${credentials.certificate}\n`, { mode: 0o600 });
    expect(credentials.command).toContain(`CertificateFile=~/.ssh/lapse-${grantId}-cert.pub ${user}@127.0.0.1`);
    return (await sshd.login(user, keyFile, certificateFile)).ok;
  }

  it('refuses a request without a usable key before storing anything', async () => {
    const before = await store.db.selectFrom('requests').select('id').execute();
    await expect(
      engine.submit({ principal: alice, target: 'hosts', entitlement: 'login', reason: 'x', parameters: { sshPublicKey: 'ssh-rsa AAAA' } }),
    ).rejects.toSatisfy((e) => isLapseError(e, 'validation_failed'));
    await expect(engine.submit({ principal: alice, target: 'hosts', entitlement: 'login', reason: 'x' })).rejects.toSatisfy((e) =>
      isLapseError(e, 'validation_failed'),
    );
    expect(await store.db.selectFrom('requests').select('id').execute()).toEqual(before);
  });

  it('issues a certificate that logs in, and a release locks it out', async () => {
    const grantId = await activeGrant(3_600_000);
    const certificateFile = join(dir, `${grantId}-cert.pub`);
    expect(await loginWith(grantId)).toBe(true);
    await engine.release({ grantId, by: alice, reason: 'done' });
    await waitFor(
      () => getGrant(store.db, grantId),
      (g) => g?.status === 'revoked',
    );
    expect((await sshd.login(user, keyFile, certificateFile)).ok).toBe(false);
  });

  it('locks the certificate out when the grant expires, through the engine revoking on time', async () => {
    const grantId = await activeGrant(3_000);
    const certificateFile = join(dir, `${grantId}-cert.pub`);
    expect(await loginWith(grantId)).toBe(true);
    await waitFor(
      () => getGrant(store.db, grantId),
      (g) => g?.status === 'revoked',
      15_000,
    );
    const logBefore = sshd.log().length;
    // NB. The certificate itself is valid a minute longer (the engine's provisioning slack); the
    // KRL entry the engine's revoke wrote is what refuses it now.
    expect((await sshd.login(user, keyFile, certificateFile)).ok).toBe(false);
    expect(sshd.log().slice(logBefore)).toMatch(/revoked by file/);
  }, 30_000);
});
