import { execFile, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';

/** The real `psql` client, as a user would run it (password through PGPASSWORD). */
export interface PsqlLogin {
  readonly host: string;
  readonly port: number;
  readonly database: string;
  readonly user: string;
  readonly password?: string;
}

export interface PsqlResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

function environment(login: PsqlLogin): NodeJS.ProcessEnv {
  return { ...process.env, PGPASSWORD: login.password ?? '', PGCONNECT_TIMEOUT: '5', PGAPPNAME: 'psql-test' };
}

function args(login: PsqlLogin): string[] {
  return ['-X', '-At', '-v', 'ON_ERROR_STOP=1', '-h', login.host, '-p', String(login.port), '-U', login.user, '-d', login.database];
}

export function psql(login: PsqlLogin, sql: string): Promise<PsqlResult> {
  return new Promise((resolve) => {
    execFile('psql', [...args(login), '-c', sql], { env: environment(login), timeout: 15_000 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
      resolve({ code, stdout: stdout.trim(), stderr: stderr.trim() });
    });
  });
}

/** A psql session kept open: statements go in on stdin, one at a time. */
export class PsqlSession {
  private readonly child: ChildProcessWithoutNullStreams;
  private out = '';
  private err = '';
  readonly exited: Promise<number>;

  constructor(login: PsqlLogin) {
    this.child = spawn('psql', args(login), { env: environment(login) });
    this.child.stdout.on('data', (chunk: Buffer) => (this.out += chunk.toString()));
    this.child.stderr.on('data', (chunk: Buffer) => (this.err += chunk.toString()));
    this.exited = new Promise((resolve) => this.child.on('close', (code) => resolve(code ?? -1)));
  }

  /** Sends one statement and waits until its output line appears (or the session dies). */
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
