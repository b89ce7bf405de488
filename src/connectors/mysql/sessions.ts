import mysql from 'mysql2/promise';
import { LapseError } from '../../domain/errors.js';
import { warnIfInsecure, withinDeadline, type Warn } from '../shared/index.js';
import type { MysqlTarget } from './settings.js';

export type MysqlConnection = mysql.Connection;

/**
 * A connection per call, as Lapse's own user. (A pool would keep the process alive: mysql2's
 * pools hold idle sockets and a timer that never stops, and connectors have no shutdown hook.)
 * When a call's deadline passes its connection is destroyed (mysql2 takes no AbortSignal).
 * NB. Values are escaped by mysql2 on the client (`?` placeholders, `escape`, `escapeId`), which
 * uses backslash escapes: every connection first clears NO_BACKSLASH_ESCAPES from its sql_mode so
 * the server reads those escapes the way mysql2 wrote them.
 */
export class MysqlSessions {
  /** Targets already warned about (insecure TLS), so the warning comes once, not per call. */
  private readonly warned = new Set<string>();

  constructor(private readonly warn: Warn) {}

  run<T>(target: MysqlTarget, signal: AbortSignal, what: string, work: (connection: MysqlConnection) => Promise<T>): Promise<T> {
    return this.runAs(target, target.user, target.password, signal, what, async (connection) => {
      await connection.query(`SET SESSION sql_mode = REPLACE(@@SESSION.sql_mode, 'NO_BACKSLASH_ESCAPES', '')`);
      return work(connection);
    });
  }

  /** A connection as `user` (Lapse's own, or the ephemeral user itself for what only it may do). */
  async runAs<T>(
    target: MysqlTarget,
    user: string,
    password: string | undefined,
    signal: AbortSignal,
    what: string,
    work: (connection: MysqlConnection) => Promise<T>,
  ): Promise<T> {
    const key = JSON.stringify([target.name, target.tls]);
    if (!this.warned.has(key)) {
      this.warned.add(key);
      warnIfInsecure(target.tls, target.name, this.warn);
    }
    let connection: MysqlConnection | undefined;
    let aborted = false;
    return withinDeadline(
      signal,
      `${what} at MySQL target ${target.name}`,
      async () => {
        try {
          connection = await mysql.createConnection({ ...this.options(target), user, password });
          if (aborted) throw signal.reason;
          return await work(connection);
        } catch (error) {
          throw asLapseError(error, target, what);
        } finally {
          if (!aborted) await connection?.end().catch(() => connection?.destroy());
        }
      },
      () => {
        aborted = true;
        connection?.destroy();
      },
    );
  }

  /** Nothing stays open between calls; kept so both SQL connectors close the same way. */
  async close(): Promise<void> {}

  private options(target: MysqlTarget) {
    return {
      host: target.host,
      port: target.port,
      connectTimeout: target.connectTimeoutMs,
      ...(target.tls ? { ssl: { ...target.tls } } : {}),
      charset: 'utf8mb4_general_ci',
      // NB. Several statements in one query would let a quoting slip become an injection.
      multipleStatements: false,
    };
  }
}

/** Turns a driver error into a LapseError naming the target and step, without any secret. */
export function asLapseError(error: unknown, target: MysqlTarget, what: string): LapseError {
  if (error instanceof LapseError) return error;
  const message = error instanceof Error ? error.message : String(error);
  const code = (error as { code?: string }).code;
  const errno = (error as { errno?: number }).errno;
  const hint =
    code === 'ER_ACCESS_DENIED_ERROR'
      ? `check targets.${target.name}.settings.user and password`
      : code === 'ER_SPECIFIC_ACCESS_DENIED_ERROR' || code === 'ER_DBACCESS_DENIED_ERROR' || code === 'ER_TABLEACCESS_DENIED_ERROR'
        ? `Lapse's user lacks a privilege; see the privileges section of docs/connectors/mysql.md`
        : errno === undefined
          ? `check that MySQL/MariaDB is reachable at ${target.host}:${target.port}`
          : undefined;
  return new LapseError(
    'connector_failed',
    `${what} at MySQL target ${target.name} failed: ${message}${code ? ` (${code})` : ''}`,
    { where: `targets.${target.name}`, ...(hint ? { hint } : {}) },
    { cause: error },
  );
}
