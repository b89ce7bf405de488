import { execFile } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import sshpk from 'sshpk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { offline } from '../../../test/support/environment.js';
import type { EntitlementConfig, TargetConfig } from '../../config/types.js';
import { isLapseError } from '../../domain/errors.js';
import { newId } from '../../domain/ids.js';
import { checkParameters } from '../../engine/context.js';
import { connectorConformance } from '../testing/conformance.js';
import type { GrantSpec, ProvisionResult } from '../types.js';
import { serialForGrant } from './certificate.js';
import { krlOf, Ledger, RETENTION_MS } from './ledger.js';
import { createUser, deleteUser, freePort, LocalSshd, sshdPath } from './testing/local-sshd.js';
import { SshConnector } from './ssh-connector.js';

const run = promisify(execFile);
const connector = new SshConnector();
const suffix = randomBytes(3).toString('hex');
const dir = mkdtempSync(join(tmpdir(), 'lapse-ssh-'));
// NB. sshd reads the principals files as the logging-in user, so the tree must be traversable.
chmodSync(dir, 0o755);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Logs in by login name (sshd's default mapping). */
const loginUser = `lapse_a${suffix}`;
/** Logs in through AuthorizedPrincipalsFile, which lists `opsPrincipal`. */
const opsUser = `lapse_b${suffix}`;
const opsPrincipal = `ops-${suffix}`;

function entitlement(name: string, settings: Record<string, unknown>): EntitlementConfig {
  return { name, target: 'bastion', description: '', settings, labels: {} };
}

function makeTarget(settings: Record<string, unknown>, entitlements: EntitlementConfig[] = []): TargetConfig {
  return { name: 'bastion', connector: 'ssh', description: '', settings, labels: {}, entitlements: new Map(entitlements.map((e) => [e.name, e])) };
}

const entitlements = {
  login: entitlement('login', { principals: [loginUser] }),
  ops: entitlement('ops', { principals: [opsPrincipal], extensions: ['permit-pty', 'permit-port-forwarding'] }),
  other: entitlement('other', { principals: ['someone-else'] }),
  forced: entitlement('forced', { principals: [loginUser], forceCommand: 'echo forced-by-lapse' }),
  fenced: entitlement('fenced', { principals: [loginUser], sourceAddress: ['10.9.9.9/32'] }),
};
const caKeyPath = join(dir, 'ca', 'lapse-ca');
const krlPath = join(dir, 'krl', 'revoked.krl');
const target = makeTarget({ caKeyPath, krlPath, host: 'bastion.example.com' }, Object.values(entitlements));

let userKey = '';
let userPublicKey = '';

function grant(overrides: Partial<GrantSpec> = {}): GrantSpec {
  return {
    grantId: newId('grant'),
    principalId: `user-${randomBytes(3).toString('hex')}`,
    target,
    entitlement: entitlements.login,
    durationMs: 600_000,
    notAfter: new Date(Date.now() + 600_000),
    parameters: { sshPublicKey: userPublicKey },
    ...overrides,
  };
}

function saveCertificate(provisioned: ProvisionResult): string {
  const file = join(dir, `cert-${randomBytes(4).toString('hex')}-cert.pub`);
  writeFileSync(file, `${provisioned.credentials?.certificate}\n`, { mode: 0o600 });
  return file;
}

function signal(): AbortSignal {
  return AbortSignal.timeout(30_000);
}

describe('ssh connector, offline checks', () => {
  const rsa2048 = sshpk.parseKey(generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ type: 'spki', format: 'pem' }), 'pem').toString('ssh');
  const ed25519 = sshpk.parseKey(generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }), 'pem').toString('ssh');
  const ecdsa = sshpk.parseKey(generateKeyPairSync('ec', { namedCurve: 'P-384' }).publicKey.export({ type: 'spki', format: 'pem' }), 'pem').toString('ssh');
  const check = (parameters: Record<string, string>) => connector.validateParameters(target, entitlements.login, parameters);

  it('accepts Ed25519 and ECDSA public key lines, with a comment and a trailing newline', () => {
    expect(check({ sshPublicKey: ed25519 })).toEqual([]);
    expect(check({ sshPublicKey: `${ecdsa} alice@laptop\n` })).toEqual([]);
  });

  it('refuses a missing key, other parameters, and anything that is not one plain public key line', () => {
    const [type, blob] = ed25519.split(' ') as [string, string];
    const cases: Record<string, string>[] = [
      {},
      { sshPublicKey: '' },
      { sshPublicKey: `${ed25519}\n${ed25519}` },
      { sshPublicKey: `command="/bin/sh" ${ed25519}` },
      { sshPublicKey: `ssh-ed25519-cert-v01@openssh.com ${blob}` },
      { sshPublicKey: `ssh-dss ${blob}` },
      { sshPublicKey: `ecdsa-sha2-nistp256 ${blob}` },
      { sshPublicKey: `${type} ${blob.slice(0, -12)}` },
      { sshPublicKey: `${type} not-base64!` },
      { sshPublicKey: `${ed25519} comment\twith tab` },
      { sshPublicKey: `${ed25519} ${'x'.repeat(5000)}` },
      { sshPublicKey: rsa2048 },
    ];
    for (const parameters of cases) {
      const problems = check(parameters);
      expect(problems, JSON.stringify(parameters).slice(0, 120)).toHaveLength(1);
      expect(problems[0]).toMatch(/^parameters\.sshPublicKey: /);
    }
    expect(check({ sshPublicKey: rsa2048 })[0]).toMatch(/3072 to 16384 bits \(this one has 2048\)/);
    expect(check({ sshPublicKey: ed25519, shell: '/bin/sh' })).toEqual(['parameters.shell: ssh entitlements take only sshPublicKey']);
  });

  it('is what the engine asks before a request is stored: a bad key is a validation_failed error listing the problems', () => {
    const resolved = { target, entitlement: entitlements.login, connector };
    expect(() => checkParameters(resolved, { sshPublicKey: ed25519 })).not.toThrow();
    try {
      checkParameters(resolved, { sshPublicKey: rsa2048, extra: 'x' });
      expect.unreachable();
    } catch (error) {
      expect(isLapseError(error, 'validation_failed')).toBe(true);
      expect((error as { details: { problems: string[] } }).details.problems).toEqual([
        expect.stringMatching(/^parameters\.sshPublicKey: RSA keys must have/),
        'parameters.extra: ssh entitlements take only sshPublicKey',
      ]);
    }
  });

  it('accepts its example settings', () => {
    expect(connector.validateSettings(target)).toEqual([]);
    expect(
      connector.validateSettings(
        makeTarget({ caPrivateKey: '-----BEGIN OPENSSH PRIVATE KEY-----', krlPath }, [entitlement('me', { requesterPrincipal: true })]),
      ),
    ).toEqual([]);
  });

  it('refuses hostile principal names, unknown extensions and malformed options, naming each setting', () => {
    const hostile = ['root,admin', 'a b', 'x"y', "o'brien", '$(id)', '; rm -rf /', '..\\x', 'ålice', '*', '-oProxyCommand=x', 'a\nb', '', 'x'.repeat(65), '%u'];
    const problems = connector.validateSettings(
      makeTarget({ caKeyPath, krlPath }, [
        entitlement('bad', {
          principals: hostile,
          extensions: ['permit-pty', 'no-touch-required', 'permit-pty'],
          forceCommand: 'ls\nrm -rf /',
          sourceAddress: ['10.0.0.0/33', '1.2.3.4; true', '::1/128'],
        }),
      ]),
    );
    const at = 'targets.bastion.entitlements.bad.settings';
    hostile.forEach((_p, i) => expect(problems).toContainEqual(expect.stringMatching(new RegExp(`^${at}\\.principals\\[${i}\\]: .* is not a principal name`))));
    expect(problems).toContainEqual(expect.stringMatching(new RegExp(`^${at}\\.extensions\\[1\\]: "no-touch-required" is not one of`)));
    expect(problems).toContain(`${at}.extensions: lists an extension twice`);
    expect(problems).toContainEqual(expect.stringMatching(new RegExp(`^${at}\\.forceCommand: must be one line`)));
    expect(problems).toContainEqual(expect.stringMatching(new RegExp(`^${at}\\.sourceAddress\\[0\\]: `)));
    expect(problems).toContainEqual(expect.stringMatching(new RegExp(`^${at}\\.sourceAddress\\[1\\]: `)));
    expect(problems.some((p) => p.startsWith(`${at}.sourceAddress[2]`))).toBe(false);
    expect(problems).toHaveLength(hostile.length + 5);
  });

  it('refuses target settings that cannot work', () => {
    expect(
      connector.validateSettings(
        makeTarget({ caKeyPath: 'relative/ca', caPrivateKey: 'x', port: 70000, host: 'a b', accounts: { alice: 'root,admin' } }, [entitlement('e', {})]),
      ),
    ).toEqual([
      'targets.bastion.settings.caPrivateKey: set exactly one of caPrivateKey (${file:...} or ${env:...} holding an Ed25519 private key) or caKeyPath (a file Lapse creates if absent)',
      'targets.bastion.settings.caKeyPath: must be an absolute file path',
      'targets.bastion.settings.krlPath: required; the file sshd reads with RevokedKeys (e.g. /var/lib/lapse/ssh/revoked.krl)',
      'targets.bastion.settings.host: must be a host name or [IPv6] address (used only in the ssh command Lapse prints)',
      'targets.bastion.settings.port: must be a port number from 1 to 65535',
      'targets.bastion.settings.accounts.alice: must be a login name: 1-64 characters of letters, digits, "_", ".", "@" and "-", not starting with "." "@" or "-"',
      'targets.bastion.entitlements.e.settings.principals: required: the login names (or AuthorizedPrincipalsFile tokens) the certificate is valid for, unless requesterPrincipal: true',
    ]);
  });

  it('refuses grant ids that are not Lapse grant ids before signing anything', async () => {
    for (const grantId of ['grt_1; rm -rf /', 'x"\ny', '']) {
      await expect(connector.provision(grant({ grantId, parameters: { sshPublicKey: ed25519 } }), signal())).rejects.toThrow(/Lapse grant ids only/);
    }
  });

  it('generates its CA key 0600 with a .pub beside it, and refuses a key file others can read or that is not Ed25519', async () => {
    const own = join(dir, 'offline-ca', 'key');
    const settings = { caKeyPath: own, krlPath: join(dir, 'offline-ca', 'revoked.krl') };
    const line = await connector.caPublicKey(makeTarget(settings));
    expect(statSync(own).mode & 0o777).toBe(0o600);
    expect(readFileSync(`${own}.pub`, 'utf8')).toBe(`${line}\n`);
    expect(line).toMatch(/^ssh-ed25519 AAAA\S+ lapse-ca:bastion$/);
    expect(await connector.caPublicKey(makeTarget(settings))).toBe(line);
    chmodSync(own, 0o644);
    await expect(connector.caPublicKey(makeTarget(settings))).rejects.toThrow(/can be read by other users \(mode 644\)/);
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    await expect(connector.caPublicKey(makeTarget({ caPrivateKey: rsa, krlPath }))).rejects.toThrow(/is rsa, not Ed25519/);
    await expect(connector.caPublicKey(makeTarget({ caPrivateKey: 'not a key', krlPath }))).rejects.toThrow(/cannot be read/);
  });

  it('drops certificates from the ledger and the KRL a day after they expired, keeping the rest', async () => {
    const path = join(dir, 'retention', 'revoked.krl');
    const ca = await connector.caPublicKey(makeTarget({ caKeyPath: join(dir, 'retention', 'ca'), krlPath: path }));
    const now = new Date();
    const entry = (grantId: string, validBefore: number) => ({
      serial: String(serialForGrant(grantId)),
      grantId,
      principalId: 'p',
      entitlement: 'e',
      principals: ['p'],
      keyId: 'k',
      validBefore: new Date(validBefore).toISOString(),
      ca,
      revokedAt: now.toISOString(),
    });
    const ledger = new Ledger(path);
    await ledger.update(
      signal(),
      (entries) =>
        void entries.push(
          entry('grt_old', now.getTime() - RETENTION_MS - 1),
          entry('grt_recent', now.getTime() - 1_000),
          entry('grt_live', now.getTime() + 60_000),
        ),
    );
    await ledger.update(signal(), () => undefined);
    expect((await ledger.read()).map((e) => e.grantId)).toEqual(['grt_recent', 'grt_live']);
    // The KRL after its 49-byte header (which carries the write time) is the revoked serials' section.
    expect(readFileSync(path).subarray(49)).toEqual(krlOf(await ledger.read(), now).subarray(49));
    expect(statSync(path).mode & 0o777).toBe(0o644);
    expect(statSync(ledger.path).mode & 0o777).toBe(0o600);
  });

  it('keeps revoking after the CA key became unusable, while refusing to issue', async () => {
    const keyPath = join(dir, 'unusable', 'ca');
    const offlineTarget = makeTarget({ caKeyPath: keyPath, krlPath: join(dir, 'unusable', 'revoked.krl') }, [entitlements.login]);
    const g = grant({ target: offlineTarget, parameters: { sshPublicKey: ed25519 } });
    await connector.provision(g, signal());
    chmodSync(keyPath, 0o644);
    await connector.revoke(g, null, signal());
    expect(await connector.listAccess(offlineTarget, signal())).toEqual([]);
    const stranger = grant({ target: offlineTarget, parameters: { sshPublicKey: ed25519 } });
    await connector.revoke(stranger, null, signal());
    const ledger = await new Ledger(join(dir, 'unusable', 'revoked.krl')).read();
    expect(ledger.map((e) => [e.grantId, e.revokedAt !== null])).toEqual([
      [g.grantId, true],
      [stranger.grantId, true],
    ]);
    expect(new Set(ledger.map((e) => e.ca)).size).toBe(1);
    await expect(connector.provision(grant({ target: offlineTarget, parameters: { sshPublicKey: ed25519 } }), signal())).rejects.toThrow(
      /can be read by other users/,
    );
  });

  it('reports a passed deadline as connector_timeout, like every connector', async () => {
    const g = grant({ parameters: { sshPublicKey: ed25519 } });
    for (const call of [
      () => connector.provision(g, AbortSignal.abort()),
      () => connector.revoke(g, null, AbortSignal.abort()),
      () => connector.listAccess(target, AbortSignal.abort()),
    ]) {
      await expect(call()).rejects.toSatisfy((e) => isLapseError(e, 'connector_timeout'));
    }
  });

  it('waits for a lock file another process holds, and gives up with a clear error at the deadline', async () => {
    const path = join(dir, 'locked', 'revoked.krl');
    mkdirSync(join(dir, 'locked'));
    writeFileSync(`${path}.lock`, '999999\n');
    await expect(new Ledger(path).update(AbortSignal.timeout(200), () => undefined)).rejects.toThrow(
      /lock .*revoked\.krl\.lock stayed taken until every caller's deadline passed/,
    );
    expect(existsSync(path)).toBe(false);
    rmSync(`${path}.lock`);
    await new Ledger(path).update(signal(), () => undefined);
    expect(existsSync(path)).toBe(true);
  });

  it('refuses to rebuild the KRL from a damaged ledger instead of dropping revocations', async () => {
    const damaged = join(dir, 'damaged', 'revoked.krl');
    mkdirSync(join(dir, 'damaged'));
    writeFileSync(`${damaged}.issued.jsonl`, '{"serial":"1","grantId":"g","ca":"x","revokedAt":"2020-01-01"}\nnot json\n');
    await expect(new Ledger(damaged).update(signal(), () => undefined)).rejects.toThrow(/line 2 is not a certificate record/);
    expect(existsSync(damaged)).toBe(false);
  });
});

describe.skipIf(offline())('ssh connector against a real sshd and the ssh client', () => {
  let sshd: LocalSshd;
  let keyFile = '';

  beforeAll(async () => {
    sshdPath();
    keyFile = join(dir, 'id_ed25519');
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'requester', '-f', keyFile]);
    userKey = keyFile;
    userPublicKey = readFileSync(`${keyFile}.pub`, 'utf8');
    await createUser(loginUser);
    await createUser(opsUser);
    await connector.checkTarget(target, signal());
    sshd = await LocalSshd.start({
      dir,
      port: await freePort(),
      trustedCaFile: `${caKeyPath}.pub`,
      krlFile: krlPath,
      byLoginName: [loginUser],
      byPrincipalsFile: { [opsUser]: [opsPrincipal] },
    });
  }, 60_000);

  afterAll(async () => {
    await sshd?.stop();
    await deleteUser(loginUser);
    await deleteUser(opsUser);
  });

  async function login(user: string, provisioned: ProvisionResult, key = userKey) {
    return sshd.login(user, key, saveCertificate(provisioned));
  }

  connectorConformance({
    name: 'ssh',
    connector: () => connector,
    grant,
    hasAccess: async (g, provisioned) => (await login(loginUser, provisioned)).ok,
  });

  it('logs in by login name, and through an AuthorizedPrincipalsFile; a certificate for other principals gets nowhere', async () => {
    const direct = await connector.provision(grant(), signal());
    expect(await login(loginUser, direct)).toMatchObject({ ok: true });
    expect((await login(opsUser, direct)).ok).toBe(false);

    const ops = await connector.provision(grant({ entitlement: entitlements.ops }), signal());
    expect(await login(opsUser, ops)).toMatchObject({ ok: true });
    expect((await login(loginUser, ops)).ok).toBe(false);

    const other = await connector.provision(grant({ entitlement: entitlements.other }), signal());
    expect((await login(loginUser, other)).ok).toBe(false);
    expect((await login(opsUser, other)).ok).toBe(false);
  });

  it('signs the fields it promises: key id, serial from the grant id, principals, validity, extensions', async () => {
    const g = grant({ entitlement: entitlements.ops, principalId: 'eve"\n; rm -rf /' });
    const provisioned = await connector.provision(g, signal());
    const { stdout } = await run('ssh-keygen', ['-L', '-f', saveCertificate(provisioned)], { env: { ...process.env, TZ: 'UTC' } });
    expect(stdout).toContain(`Key ID: "lapse:${g.grantId}:eve%22%0A%3B%20rm%20-rf%20%2F"`);
    expect(stdout).toContain(`Serial: ${serialForGrant(g.grantId)}`);
    expect(stdout).toMatch(new RegExp(`Principals: \\n\\s+${opsPrincipal}\\n\\s+Critical Options: \\(none\\)`));
    expect(stdout).toMatch(/Extensions: \n\s+permit-port-forwarding\n\s+permit-pty\n?$/);
    const validBefore = new Date(Math.floor(g.notAfter.getTime() / 1000) * 1000).toISOString();
    expect(stdout).toContain(` to ${validBefore.slice(0, 19)}`);
    expect(provisioned.credentials).toMatchObject({
      serial: String(serialForGrant(g.grantId)),
      validBefore,
      principals: opsPrincipal,
      command: `ssh -i ~/.ssh/YOUR_PRIVATE_KEY -o CertificateFile=~/.ssh/lapse-${g.grantId}-cert.pub ${opsPrincipal}@bastion.example.com`,
    });
    expect(JSON.stringify(provisioned.handle)).not.toContain(provisioned.credentials!.certificate!.split(' ')[1]);
    await connector.revoke(g, provisioned.handle, signal());
  });

  it('stops working once the grant ends, without any revoke', async () => {
    const g = grant({ notAfter: new Date(Date.now() + 4_000) });
    const provisioned = await connector.provision(g, signal());
    expect(await login(loginUser, provisioned)).toMatchObject({ ok: true });
    expect((await connector.listAccess(target, signal())).some((a) => a.grantId === g.grantId)).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, g.notAfter.getTime() - Date.now() + 1_000));
    const after = await login(loginUser, provisioned);
    expect(after.ok).toBe(false);
    expect(sshd.log()).toMatch(/Certificate invalid: expired/);
    expect((await connector.listAccess(target, signal())).some((a) => a.grantId === g.grantId)).toBe(false);
  }, 20_000);

  it('revokes early through the KRL: that certificate fails, others still work, ssh-keygen agrees', async () => {
    const revoked = grant();
    const kept = grant();
    const first = await connector.provision(revoked, signal());
    const second = await connector.provision(kept, signal());
    expect((await login(loginUser, first)).ok).toBe(true);
    await connector.revoke(revoked, first.handle, signal());
    expect((await login(loginUser, first)).ok).toBe(false);
    expect(sshd.log()).toMatch(/ED25519-CERT \S+ revoked by file /);
    expect((await login(loginUser, second)).ok).toBe(true);
    const query = await run('ssh-keygen', ['-Q', '-f', krlPath, saveCertificate(second)]);
    expect(query.stdout).toMatch(/: ok$/m);
    await expect(run('ssh-keygen', ['-Q', '-f', krlPath, saveCertificate(first)])).rejects.toMatchObject({ stdout: expect.stringMatching(/: REVOKED$/m) });
    await connector.revoke(kept, second.handle, signal());
  });

  it('revokes by grant id even when the ledger lost the certificate, and will not re-issue a revoked grant', async () => {
    const g = grant();
    const provisioned = await connector.provision(g, signal());
    const ledger = new Ledger(krlPath);
    await ledger.update(
      signal(),
      (entries) =>
        void entries.splice(
          entries.findIndex((e) => e.grantId === g.grantId),
          1,
        ),
    );
    await connector.revoke(g, null, signal());
    expect((await login(loginUser, provisioned)).ok).toBe(false);
    await expect(connector.provision(g, signal())).rejects.toThrow(/was revoked at ssh target bastion/);
  });

  it('serialises concurrent revokes: every one lands in the KRL', async () => {
    const grants = Array.from({ length: 12 }, () => grant());
    const issued = await Promise.all(grants.map((g) => connector.provision(g, signal())));
    const files = issued.map(saveCertificate);
    await Promise.all(grants.map((g, i) => new SshConnector().revoke(g, issued[i]!.handle, signal())));
    const query = await run('ssh-keygen', ['-Q', '-f', krlPath, ...files]).catch((e: { stdout: string }) => e);
    expect(query.stdout.match(/: REVOKED$/gm)).toHaveLength(grants.length);
    expect(existsSync(`${krlPath}.lock`)).toBe(false);
  });

  it('replaces the KRL by rename: logins keep working while it is rewritten over and over (sshd denies all when it is missing)', async () => {
    const provisioned = await connector.provision(grant(), signal());
    const file = saveCertificate(provisioned);
    let rewriting = true;
    let rewrites = 0;
    const ledger = new Ledger(krlPath);
    const churn = (async () => {
      while (rewriting) {
        await ledger.update(signal(), () => undefined);
        rewrites++;
      }
    })();
    const outcomes = [];
    for (let i = 0; i < 8; i++) outcomes.push(await sshd.login(loginUser, userKey, file));
    rewriting = false;
    await churn;
    expect(rewrites).toBeGreaterThan(8);
    expect(outcomes.filter((o) => !o.ok)).toEqual([]);
  }, 60_000);

  it('serialises revokes from another process on the same KRL through its lock file', async () => {
    const mine = Array.from({ length: 25 }, () => grant());
    const theirs = Array.from({ length: 25 }, () => grant());
    const issued = await Promise.all([...mine, ...theirs].map((g) => connector.provision(g, signal())));
    const module = new URL('./ssh-connector.ts', import.meta.url).pathname;
    // NB. Both processes start revoking at the same agreed moment, so their updates really overlap.
    const startAt = Date.now() + 4_000;
    const child = run(
      process.execPath,
      [
        '--import',
        'tsx',
        '--input-type=module',
        '-e',
        `
      const { SshConnector } = await import(${JSON.stringify(module)});
      const target = { ...JSON.parse(process.env.TARGET), entitlements: new Map() };
      await new Promise((resolve) => setTimeout(resolve, Number(process.env.START_AT) - Date.now()));
      for (const g of JSON.parse(process.env.GRANTS)) {
        await new SshConnector().revoke({ ...g, target, notAfter: new Date(g.notAfter) }, null, AbortSignal.timeout(30000));
      }`,
      ],
      {
        env: {
          ...process.env,
          START_AT: String(startAt),
          TARGET: JSON.stringify({ ...target, entitlements: [] }),
          GRANTS: JSON.stringify(theirs.map((g) => ({ ...g, target: undefined }))),
        },
      },
    );
    await new Promise((resolve) => setTimeout(resolve, startAt - Date.now()));
    for (const g of mine) await connector.revoke(g, null, signal());
    await child;
    const files = issued.map(saveCertificate);
    const query = await run('ssh-keygen', ['-Q', '-f', krlPath, ...files]).catch((e: { stdout: string }) => e);
    expect(query.stdout.match(/: REVOKED$/gm)).toHaveLength(files.length);
  }, 60_000);

  it('signs for an RSA 3072 requester key', async () => {
    const rsaKey = join(dir, 'id_rsa');
    await run('ssh-keygen', ['-q', '-t', 'rsa', '-b', '3072', '-N', '', '-f', rsaKey]);
    const g = grant({ parameters: { sshPublicKey: readFileSync(`${rsaKey}.pub`, 'utf8') } });
    const provisioned = await connector.provision(g, signal());
    expect(await login(loginUser, provisioned, rsaKey)).toMatchObject({ ok: true });
    await connector.revoke(g, provisioned.handle, signal());
    expect((await login(loginUser, provisioned, rsaKey)).ok).toBe(false);
  }, 30_000);

  it('applies force-command and source-address critical options at the server', async () => {
    const forced = await connector.provision(grant({ entitlement: entitlements.forced }), signal());
    expect(await login(loginUser, forced)).toMatchObject({ ok: true, output: expect.stringContaining('forced-by-lapse') });
    const fenced = await connector.provision(grant({ entitlement: entitlements.fenced }), signal());
    expect((await login(loginUser, fenced)).ok).toBe(false);
  });

  it("names the requester's own login with requesterPrincipal, mapped through accounts, and refuses an id that is no login name", async () => {
    const me = entitlement('me', { requesterPrincipal: true });
    const mapped = makeTarget({ caKeyPath, krlPath, accounts: { 'alice@example.com': loginUser } }, [me]);
    const own = await connector.provision(grant({ target: mapped, entitlement: me, principalId: loginUser }), signal());
    expect(await login(loginUser, own)).toMatchObject({ ok: true });
    const viaMap = await connector.provision(grant({ target: mapped, entitlement: me, principalId: 'alice@example.com' }), signal());
    expect(viaMap.credentials?.principals).toBe(loginUser);
    expect(await login(loginUser, viaMap)).toMatchObject({ ok: true });
    await expect(connector.provision(grant({ target: mapped, entitlement: me, principalId: 'eve,root' }), signal())).rejects.toThrow(
      /"eve,root" is not a login name usable on ssh target bastion/,
    );
  });

  it('signs with a CA key given by secret reference, and for an ECDSA requester key', async () => {
    const bySecret = makeTarget({ caPrivateKey: readFileSync(caKeyPath, 'utf8'), krlPath }, [entitlements.login]);
    const ecdsaKey = join(dir, 'id_ecdsa');
    await run('ssh-keygen', ['-q', '-t', 'ecdsa', '-b', '384', '-N', '', '-f', ecdsaKey]);
    const g = grant({ target: bySecret, parameters: { sshPublicKey: readFileSync(`${ecdsaKey}.pub`, 'utf8') } });
    const provisioned = await connector.provision(g, signal());
    expect((await login(loginUser, provisioned, ecdsaKey)).ok).toBe(true);
    expect((await login(loginUser, provisioned)).ok).toBe(false);
    await connector.revoke(g, provisioned.handle, signal());
  });
});
