import { execFile } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * A private PostgreSQL cluster whose loopback logins need a password (scram-sha-256), for the
 * tests the shared server cannot do because it trusts 127.0.0.1: that the password Lapse hands
 * out is the one the server checks, and that VALID UNTIL refuses logins after the grant's end.
 * The superuser `postgres` stays trusted so the test can set things up.
 */
export interface PasswordCluster {
  readonly host: string;
  readonly port: number;
  /** The server's log file (to prove what never reaches it). */
  readonly logFile: string;
  stop(): Promise<void>;
}

async function binDir(): Promise<string> {
  if (process.env.LAPSE_TEST_PG_BINDIR) return process.env.LAPSE_TEST_PG_BINDIR;
  const candidates = [
    await run('pg_config', ['--bindir']).then(
      (r) => r.stdout.trim(),
      () => '',
    ),
    ...installedVersions(),
  ];
  const found = candidates.find((dir) => dir && existsSync(join(dir, 'initdb')) && existsSync(join(dir, 'pg_ctl')));
  if (found) return found;
  throw new Error(
    'The password-authentication test starts its own PostgreSQL cluster and needs initdb/pg_ctl: install the postgresql server package, or set LAPSE_TEST_PG_BINDIR to their directory.',
  );
}

/** Debian's layout: /usr/lib/postgresql/<major>/bin, newest first. */
function installedVersions(): string[] {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return [];
  return readdirSync(root)
    .sort((a, b) => Number(b) - Number(a))
    .map((major) => join(root, major, 'bin'));
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

export async function startPasswordCluster(): Promise<PasswordCluster> {
  const bin = await binDir();
  const dir = mkdtempSync(join(tmpdir(), 'lapse-pgauth-'));
  const data = join(dir, 'data');
  // PostgreSQL refuses to run as root: as root, the cluster belongs to the postgres OS user.
  const asRoot = process.getuid?.() === 0;
  if (asRoot) {
    const { stdout } = await run('id', ['-u', 'postgres']);
    const { stdout: gid } = await run('id', ['-g', 'postgres']);
    chownSync(dir, Number(stdout.trim()), Number(gid.trim()));
  }
  const as = (command: string, args: string[]) => (asRoot ? run('runuser', ['-u', 'postgres', '--', command, ...args]) : run(command, args));
  const port = await freePort();
  await as(join(bin, 'initdb'), ['-D', data, '-U', 'postgres', '--auth-local=trust', '--auth-host=scram-sha-256', '-E', 'UTF8', '--no-sync']);
  writeFileSync(
    join(data, 'pg_hba.conf'),
    ['local all all trust', 'host all postgres 127.0.0.1/32 trust', 'host all all 127.0.0.1/32 scram-sha-256', ''].join('\n'),
  );
  await as(join(bin, 'pg_ctl'), ['-D', data, '-l', join(dir, 'log'), '-w', '-o', `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off`, 'start']);
  return {
    host: '127.0.0.1',
    port,
    logFile: join(dir, 'log'),
    async stop() {
      await as(join(bin, 'pg_ctl'), ['-D', data, '-m', 'immediate', 'stop']).catch(() => {});
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
