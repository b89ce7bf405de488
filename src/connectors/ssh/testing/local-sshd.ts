import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';

/**
 * Test support: a real sshd on 127.0.0.1 with its own config, host key and throw-away users, and
 * the real ssh client to log in. Needs root (to add users and run sshd) and openssh-server.
 */
const run = promisify(execFile);
const SSHD = ['/usr/sbin/sshd', '/usr/bin/sshd', '/usr/local/sbin/sshd'];

/** The sshd binary: LAPSE_TEST_SSHD, or where Debian and others install it. */
export function sshdPath(): string {
  const candidates = process.env.LAPSE_TEST_SSHD ? [process.env.LAPSE_TEST_SSHD] : SSHD;
  const found = candidates.find((path) => existsSync(path));
  if (!found) {
    throw new Error(
      `sshd is not installed (looked for ${candidates.join(', ')}): install openssh-server, as .ci/run does (apt-get install -y openssh-server), point LAPSE_TEST_SSHD at an sshd binary, or run the offline suite (LAPSE_TEST_OFFLINE=1)`,
    );
  }
  if (process.getuid?.() !== 0) {
    throw new Error('the ssh connector test runs sshd and adds throw-away users, which needs root: run it as root (as CI does) or use LAPSE_TEST_OFFLINE=1');
  }
  return found;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/** A local account that may log in by certificate only: unlocked (`*` password: no password works). */
export async function createUser(name: string): Promise<void> {
  await run('useradd', ['--create-home', '--shell', '/bin/sh', name]);
  await run('usermod', ['-p', '*', name]);
}

export async function deleteUser(name: string): Promise<void> {
  await run('userdel', ['--remove', name]).catch(() => undefined);
}

export interface SshdOptions {
  readonly dir: string;
  readonly port: number;
  readonly trustedCaFile: string;
  readonly krlFile: string;
  /** Users whose certificates must carry their login name as a principal (sshd's default). */
  readonly byLoginName: readonly string[];
  /** Users whose accepted principals are listed in `<dir>/principals/<user>` (AuthorizedPrincipalsFile). */
  readonly byPrincipalsFile: Readonly<Record<string, readonly string[]>>;
}

export class LocalSshd {
  private constructor(
    private readonly child: ChildProcess,
    readonly port: number,
    readonly log: () => string,
  ) {}

  static async start(options: SshdOptions): Promise<LocalSshd> {
    const sshd = sshdPath();
    const { dir, port } = options;
    // NB. sshd refuses to start without its privilege separation directory.
    mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
    const hostKey = join(dir, 'host_ed25519');
    if (!existsSync(hostKey)) await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', hostKey]);
    const principalsDir = join(dir, 'principals');
    mkdirSync(principalsDir, { recursive: true, mode: 0o755 });
    for (const [user, principals] of Object.entries(options.byPrincipalsFile)) {
      writeFileSync(join(principalsDir, user), `${principals.join('\n')}\n`, { mode: 0o644 });
    }
    const users = [...options.byLoginName, ...Object.keys(options.byPrincipalsFile)];
    const config = [
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${hostKey}`,
      `PidFile ${join(dir, 'sshd.pid')}`,
      'UsePAM no',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'PubkeyAuthentication yes',
      'AuthorizedKeysFile none',
      'PermitRootLogin no',
      'StrictModes no',
      'UseDNS no',
      'LogLevel VERBOSE',
      `AllowUsers ${users.join(' ')}`,
      `TrustedUserCAKeys ${options.trustedCaFile}`,
      `RevokedKeys ${options.krlFile}`,
      // The second mapping, for the users given a principals file. (A Match block cannot turn a
      // global AuthorizedPrincipalsFile off again with "none" in OpenSSH 9.2, so it is set per user.)
      ...Object.keys(options.byPrincipalsFile).flatMap((user) => [`Match User ${user}`, `  AuthorizedPrincipalsFile ${principalsDir}/%u`]),
    ];
    const configFile = join(dir, 'sshd_config');
    writeFileSync(configFile, `${config.join('\n')}\n`, { mode: 0o600 });
    await run(sshd, ['-t', '-f', configFile]);
    let log = '';
    const child = spawn(sshd, ['-D', '-e', '-f', configFile], { stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr?.on('data', (chunk: Buffer) => {
      log = (log + chunk.toString()).slice(-20_000);
    });
    const server = new LocalSshd(child, port, () => log);
    await server.waitListening();
    return server;
  }

  private async waitListening(): Promise<void> {
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      if (this.child.exitCode !== null) throw new Error(`sshd exited at start: ${this.log()}`);
      const up = await new Promise<boolean>((resolve) => {
        const socket = connect(this.port, '127.0.0.1', () => {
          socket.destroy();
          resolve(true);
        });
        socket.on('error', () => resolve(false));
      });
      if (up) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`sshd did not listen on 127.0.0.1:${this.port} within 10 s: ${this.log()}`);
  }

  /**
   * Logs in with the real ssh client and runs `true`. Returns whether it worked and ssh's
   * diagnostics. `-F /dev/null` and IdentitiesOnly keep the runner's own ssh setup out of it.
   */
  async login(user: string, privateKeyFile: string, certificateFile: string): Promise<{ ok: boolean; output: string }> {
    const args = [
      '-F',
      '/dev/null',
      '-i',
      privateKeyFile,
      '-o',
      `CertificateFile=${certificateFile}`,
      '-o',
      'IdentitiesOnly=yes',
      '-o',
      'IdentityAgent=none',
      '-o',
      'BatchMode=yes',
      '-o',
      'PreferredAuthentications=publickey',
      '-o',
      'StrictHostKeyChecking=no',
      '-o',
      'UserKnownHostsFile=/dev/null',
      '-o',
      'LogLevel=ERROR',
      '-o',
      'ConnectTimeout=10',
      '-p',
      String(this.port),
      `${user}@127.0.0.1`,
      'true',
    ];
    try {
      const { stdout, stderr } = await run('ssh', args, { timeout: 20_000 });
      return { ok: true, output: stdout + stderr };
    } catch (error) {
      const failure = error as { stderr?: string; code?: number };
      return { ok: false, output: `${failure.stderr ?? ''} (exit ${failure.code ?? '?'}); sshd said: ${this.log().slice(-1500)}` };
    }
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.kill('SIGTERM');
    await exited;
  }
}
