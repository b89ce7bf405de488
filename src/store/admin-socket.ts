import { chmodSync, lstatSync, mkdirSync, rmSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import {
  CompiledQuery,
  Kysely,
  PostgresAdapter,
  PostgresIntrospector,
  PostgresQueryCompiler,
  type DatabaseConnection,
  type Dialect,
  type Driver,
  type QueryResult,
} from 'kysely';
import type pg from 'pg';
import { LapseError } from '../domain/errors.js';
import type { Store } from './database.js';
import type { Database } from './schema.js';

/**
 * The embedded database has one session and one process may open it (the data-dir lock), so
 * while `lapse serve` runs, `lapse admin …`, `audit verify` and `reconcile` cannot open it
 * themselves. Instead the server lends them its session over a Unix socket in the data directory:
 * the command's queries travel as JSON lines and run on the server's own connection, which the
 * command holds (so the server's work waits, as it waits for any transaction) until it hangs up.
 *
 * Who may connect is decided by the kernel: the socket lives in `<data-dir>/admin/` (mode 0700)
 * and is itself 0600, so only the OS user running `lapse serve` (and root) can reach it. Node
 * cannot read the peer's credentials (SO_PEERCRED), so file modes are the control; the server
 * checks them at start and refuses a directory someone else owns.
 */
export const ADMIN_SOCKET_DIR = 'admin';
export const ADMIN_SOCKET_FILE = 'lapse.sock';

/** A command may hold the server's session at most this long between two queries. */
const IDLE_MS = 10_000;
/** …and this long in all: the scheduler waits meanwhile. */
const SESSION_MS = 120_000;
/** One query line (SQL and parameters) at most this long. */
const MAX_LINE = 4 * 1024 * 1024;

export function adminSocketPath(dataDir: string): string {
  return join(dataDir, ADMIN_SOCKET_DIR, ADMIN_SOCKET_FILE);
}

interface Request {
  readonly sql: string;
  readonly parameters: readonly unknown[];
}

type Reply = { readonly rows: unknown[]; readonly command: string | null; readonly rowCount: number | null } | { readonly error: WireError };

interface WireError {
  readonly message: string;
  readonly code?: string;
  readonly constraint?: string;
  readonly detail?: string;
}

/**
 * Serves the session of `pool` (the embedded store's pool of one) on `<dataDir>/admin/lapse.sock`.
 * Returns a function that stops listening and ends the sessions lent out.
 */
export interface AdminSocketOptions {
  readonly log?: (message: string) => void;
  /** Tests: shorter limits than IDLE_MS and SESSION_MS. */
  readonly idleMs?: number;
  readonly sessionMs?: number;
}

export async function serveAdminSocket(pool: pg.Pool, dataDir: string, options: AdminSocketOptions = {}): Promise<() => Promise<void>> {
  const dir = join(dataDir, ADMIN_SOCKET_DIR);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const stat = lstatSync(dir);
  if (!stat.isDirectory() || (typeof process.getuid === 'function' && stat.uid !== process.getuid())) {
    throw new LapseError('storage_unavailable', `${dir} is not a directory owned by the user running lapse`, {
      where: dir,
      hint: 'Remove it; lapse serve makes it again (mode 0700).',
    });
  }
  chmodSync(dir, 0o700);
  const path = join(dir, ADMIN_SOCKET_FILE);
  // We hold the data-dir lock, so a socket file left here belongs to a server that died.
  rmSync(path, { force: true });
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    void lend(pool, socket, options);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => resolve());
  });
  chmodSync(path, 0o600);
  return async () => {
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const socket of sockets) socket.destroy();
    await closed;
    rmSync(path, { force: true });
  };
}

/** One command's session: the pool's connection, held from its first query until it hangs up. */
async function lend(pool: pg.Pool, socket: Socket, options: AdminSocketOptions): Promise<void> {
  const { log = () => {}, idleMs = IDLE_MS, sessionMs = SESSION_MS } = options;
  let client: pg.PoolClient | null = null;
  let inTransaction = false;
  const limit = setTimeout(() => {
    log(`admin socket: a command held the database longer than ${sessionMs / 1000} s; ending its session`);
    socket.destroy();
  }, sessionMs);
  socket.setTimeout(idleMs, () => {
    log(`admin socket: a command was idle for ${idleMs / 1000} s inside its session; ending it`);
    socket.destroy();
  });
  const lines = createInterface({ input: socket, crlfDelay: Infinity });
  // NB. readline ends on the socket's 'end', which a destroyed socket never emits.
  socket.once('close', () => lines.close());
  try {
    for await (const line of lines) {
      if (line.length > MAX_LINE) throw new Error('query line too long');
      const request = decode(line) as Request;
      if (typeof request?.sql !== 'string' || !Array.isArray(request.parameters)) throw new Error('malformed request');
      client ??= await pool.connect();
      let reply: Reply;
      try {
        const result = await client.query(request.sql, [...request.parameters]);
        reply = { rows: result.rows ?? [], command: result.command ?? null, rowCount: result.rowCount ?? null };
        const verb = request.sql.trim().slice(0, 8).toUpperCase();
        if (verb.startsWith('BEGIN') || verb.startsWith('START')) inTransaction = true;
        else if (verb.startsWith('COMMIT') || verb.startsWith('ROLLBACK') || verb.startsWith('END')) inTransaction = false;
      } catch (error) {
        const e = error as WireError;
        reply = {
          error: {
            message: e.message,
            ...(e.code ? { code: e.code } : {}),
            ...(e.constraint ? { constraint: e.constraint } : {}),
            ...(e.detail ? { detail: e.detail } : {}),
          },
        };
      }
      if (!socket.writable) break;
      socket.write(`${encode(reply)}\n`);
    }
  } catch (error) {
    log(`admin socket: ${(error as Error).message}; session ended`);
  } finally {
    clearTimeout(limit);
    socket.destroy();
    if (client) {
      // A command that died inside a transaction leaves nothing behind.
      if (inTransaction) await client.query('ROLLBACK').catch(() => undefined);
      client.release();
    }
  }
}

/**
 * A Kysely instance whose queries run on the server's session over its admin socket. Throws
 * storage_locked (as opening the data directory would) when no server answers there.
 */
export async function connectAdminSocket(dataDir: string): Promise<Kysely<Database>> {
  const path = adminSocketPath(dataDir);
  // Probe once, so a missing or refused socket is reported before any command runs.
  const probe = await openSocket(path);
  probe.destroy();
  return new Kysely<Database>({ dialect: new AdminSocketDialect(path) });
}

function openSocket(path: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(path);
    socket.once('connect', () => {
      socket.removeAllListeners('error');
      resolve(socket);
    });
    socket.once('error', (error: NodeJS.ErrnoException) => {
      const denied = error.code === 'EACCES' || error.code === 'EPERM';
      reject(
        new LapseError(
          denied ? 'forbidden' : 'storage_locked',
          denied
            ? `only the OS user running lapse serve can use its admin socket (${path})`
            : `the data directory is in use and its server does not answer on ${path} (${error.code ?? error.message})`,
          {
            where: path,
            hint: denied
              ? 'Run the command as the user lapse serve runs as (e.g. sudo -u lapse lapse admin …).'
              : 'Wait until lapse serve has started, or stop it to work on the database offline.',
          },
        ),
      );
    });
  });
}

class AdminSocketDialect implements Dialect {
  constructor(private readonly path: string) {}
  createAdapter() {
    return new PostgresAdapter();
  }
  createDriver(): Driver {
    return new AdminSocketDriver(this.path);
  }
  createQueryCompiler() {
    return new PostgresQueryCompiler();
  }
  createIntrospector(db: Kysely<unknown>) {
    return new PostgresIntrospector(db);
  }
}

class AdminSocketDriver implements Driver {
  constructor(private readonly path: string) {}
  async init(): Promise<void> {}
  async acquireConnection(): Promise<DatabaseConnection> {
    return new AdminSocketConnection(await openSocket(this.path));
  }
  async beginTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('BEGIN'));
  }
  async commitTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('COMMIT'));
  }
  async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('ROLLBACK'));
  }
  async releaseConnection(connection: DatabaseConnection): Promise<void> {
    (connection as AdminSocketConnection).close();
  }
  async destroy(): Promise<void> {}
}

class AdminSocketConnection implements DatabaseConnection {
  private readonly replies: AsyncIterator<string>;

  constructor(private readonly socket: Socket) {
    this.replies = createInterface({ input: socket, crlfDelay: Infinity })[Symbol.asyncIterator]();
  }

  async executeQuery<R>(query: CompiledQuery): Promise<QueryResult<R>> {
    this.socket.write(`${encode({ sql: query.sql, parameters: query.parameters })}\n`);
    const next = await this.replies.next();
    if (next.done) {
      throw new LapseError('storage_unavailable', 'lapse serve ended the admin session (it stopped, or the command was idle too long)', {
        hint: 'Run the command again.',
      });
    }
    const reply = decode(next.value) as Reply;
    if ('error' in reply) throw Object.assign(new Error(reply.error.message), reply.error);
    const changed = reply.command === 'INSERT' || reply.command === 'UPDATE' || reply.command === 'DELETE' || reply.command === 'MERGE';
    return { rows: reply.rows as R[], ...(changed ? { numAffectedRows: BigInt(reply.rowCount ?? 0) } : {}) };
  }

  // eslint-disable-next-line require-yield -- not supported over the socket
  async *streamQuery<R>(): AsyncIterableIterator<QueryResult<R>> {
    throw new Error('streaming queries are not supported over the admin socket');
  }

  close(): void {
    this.socket.end();
  }
}

const [DATE, BYTES, BIGINT] = ['$lapse:date', '$lapse:bytes', '$lapse:bigint'];

/** JSON that keeps what the database sends and takes: dates, bytes and big integers. */
function encode(value: unknown): string {
  return JSON.stringify(value, function (this: Record<string, unknown>, key, plain: unknown) {
    const raw = this[key];
    if (raw instanceof Date) return { [DATE]: raw.toISOString() };
    if (raw instanceof Uint8Array) return { [BYTES]: Buffer.from(raw).toString('base64') };
    if (typeof raw === 'bigint') return { [BIGINT]: raw.toString() };
    return plain;
  });
}

function decode(text: string): unknown {
  return JSON.parse(text, (_key, value: unknown) => {
    if (value && typeof value === 'object' && !Array.isArray(value)) {
      const keys = Object.keys(value);
      if (keys.length === 1) {
        const tagged = value as Record<string, unknown>;
        if (typeof tagged[DATE] === 'string') return new Date(tagged[DATE]);
        if (typeof tagged[BYTES] === 'string') return Buffer.from(tagged[BYTES], 'base64');
        if (typeof tagged[BIGINT] === 'string') return BigInt(tagged[BIGINT]);
      }
    }
    return value;
  });
}

/** A Store over a running server's admin socket (see serveAdminSocket). */
export async function openViaAdminSocket(dataDir: string): Promise<Store> {
  const db = await connectAdminSocket(dataDir);
  return { db, kind: 'pglite', pglite: null, connect: async () => null, close: () => db.destroy() };
}
