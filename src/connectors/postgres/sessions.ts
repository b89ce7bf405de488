import pg from 'pg';
import { LapseError } from '../../domain/errors.js';
import { warnIfInsecure, withinDeadline, type Warn } from '../shared/index.js';
import type { PostgresTarget } from './settings.js';

/**
 * One small pool of connections per target, as Lapse's own role. A call borrows one connection
 * for its statements; when its deadline passes the connection is destroyed (node-postgres takes no
 * AbortSignal), which also makes the server cancel what it was running.
 */
export class PostgresSessions {
  private readonly pools = new Map<string, { readonly fingerprint: string; readonly pool: pg.Pool }>();

  constructor(private readonly warn: Warn) {}

  async run<T>(target: PostgresTarget, signal: AbortSignal, what: string, work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const pool = this.pool(target);
    let client: pg.PoolClient | undefined;
    let released = false;
    const release = (destroy: boolean) => {
      if (client && !released) {
        released = true;
        client.release(destroy);
      }
    };
    return withinDeadline(
      signal,
      `${what} at PostgreSQL target ${target.name}`,
      async () => {
        let broken = false;
        try {
          client = await pool.connect();
          if (signal.aborted) throw signal.reason;
          return await work(client);
        } catch (error) {
          broken = !(error instanceof LapseError);
          throw asLapseError(error, target, what);
        } finally {
          release(broken);
        }
      },
      () => release(true),
    );
  }

  async close(): Promise<void> {
    const pools = [...this.pools.values()];
    this.pools.clear();
    await Promise.all(pools.map(({ pool }) => pool.end()));
  }

  private pool(target: PostgresTarget): pg.Pool {
    // NB. A config reload may point the same target name elsewhere: the fingerprint notices.
    const fingerprint = JSON.stringify([
      target.host,
      target.port,
      target.database,
      target.user,
      target.password,
      target.tls,
      target.connectTimeoutMs,
      target.maxConnections,
    ]);
    const existing = this.pools.get(target.name);
    if (existing?.fingerprint === fingerprint) return existing.pool;
    if (existing) void existing.pool.end().catch(() => {});
    warnIfInsecure(target.tls, target.name, this.warn);
    const pool = new pg.Pool({
      host: target.host,
      port: target.port,
      database: target.database,
      user: target.user,
      password: target.password,
      ssl: target.tls ? { ...target.tls } : false,
      max: target.maxConnections,
      connectionTimeoutMillis: target.connectTimeoutMs,
      // NB. A statement stuck on a lock must not hold a revoke forever; the AbortSignal is the
      // real deadline, this is the server-side backstop.
      statement_timeout: 60_000,
      lock_timeout: 30_000,
      idleTimeoutMillis: 30_000,
      allowExitOnIdle: true,
      application_name: 'lapse',
    });
    // An idle connection the server drops (restart, pg_terminate_backend) must not crash Lapse.
    pool.on('error', () => {});
    this.pools.set(target.name, { fingerprint, pool });
    return pool;
  }
}

/** Turns a driver error into a LapseError naming the target and step, without any secret. */
export function asLapseError(error: unknown, target: PostgresTarget, what: string): LapseError {
  if (error instanceof LapseError) return error;
  const message = error instanceof Error ? error.message : String(error);
  const code = (error as { code?: string }).code;
  const hint =
    code === '28P01' || code === '28000'
      ? `check targets.${target.name}.settings.user and password`
      : code === '42501'
        ? `Lapse's role lacks a privilege; see the privileges section of docs/connectors/postgres.md`
        : code === undefined || /ECONNREFUSED|ETIMEDOUT|ENOTFOUND|timeout/i.test(message)
          ? `check that PostgreSQL is reachable at ${target.host}:${target.port}`
          : undefined;
  return new LapseError(
    'connector_failed',
    `${what} at PostgreSQL target ${target.name} failed: ${message}${code ? ` (SQLSTATE ${code})` : ''}`,
    { where: `targets.${target.name}`, ...(hint ? { hint } : {}) },
    { cause: error },
  );
}
