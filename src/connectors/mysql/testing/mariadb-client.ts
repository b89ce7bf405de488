import { execFile, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';

/** The real `mariadb` command-line client, as a user would run it (password through MYSQL_PWD). */
export interface MariadbLogin {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly password: string;
}

export interface ClientResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

const args = (login: MariadbLogin) => ['--no-defaults', '-h', login.host, '-P', String(login.port), '-u', login.user, '-N', '-B', '--connect-timeout=5'];
const environment = (login: MariadbLogin) => ({ ...process.env, MYSQL_PWD: login.password });

export function mariadb(login: MariadbLogin, sql: string): Promise<ClientResult> {
  return new Promise((resolve) => {
    execFile('mariadb', [...args(login), '-e', sql], { env: environment(login), timeout: 15_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout: stdout.trim(), stderr: stderr.trim() });
    });
  });
}

/** A client session kept open: statements go in on stdin. */
export class MariadbSession {
  private readonly child: ChildProcessWithoutNullStreams;
  private out = '';
  private err = '';

  constructor(login: MariadbLogin) {
    this.child = spawn('mariadb', [...args(login), '--force', '--unbuffered'], { env: environment(login) });
    this.child.stdout.on('data', (chunk: Buffer) => (this.out += chunk.toString()));
    this.child.stderr.on('data', (chunk: Buffer) => (this.err += chunk.toString()));
  }

  /** Sends one statement and waits for `expect` in its output; false if it never comes. */
  async query(sql: string, expect: string, timeoutMs = 10_000): Promise<boolean> {
    const before = this.out.length;
    this.child.stdin.write(`${sql}\n`);
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (this.out.slice(before).includes(expect)) return true;
      if (this.child.exitCode !== null) return false;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    return false;
  }

  get stderr(): string {
    return this.err;
  }

  close(): void {
    this.child.stdin.end();
    this.child.kill();
  }
}
