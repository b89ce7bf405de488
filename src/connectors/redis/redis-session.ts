import { Redis } from 'ioredis';
import type { TargetConfig } from '../../config/types.js';
import { LapseError } from '../../domain/errors.js';
import { defaultWarn, warnIfInsecure } from '../shared/index.js';
import { parseTarget } from './redis-settings.js';

/**
 * One short connection per connector call: opened with the target's timeouts and TLS settings,
 * cut the moment the call's deadline passes, and closed afterwards. Errors become LapseErrors that
 * say which target and step failed, with any secret the step carried blanked out.
 */
export interface RedisStep {
  /** What the step does, for messages: "create the ACL user". */
  readonly doing: string;
  /** Strings to blank out of error messages (the new account's password). */
  readonly secrets?: readonly string[];
}

export async function withRedis<T>(target: TargetConfig, signal: AbortSignal, step: RedisStep, work: (redis: Redis) => Promise<T>): Promise<T> {
  const settings = parseTarget(target);
  if (signal.aborted) throw deadline(target, step);
  warnIfInsecure(settings.tls, target.name, defaultWarn);
  const redis = new Redis({
    host: settings.host,
    port: settings.port,
    username: settings.username,
    password: settings.password,
    tls: settings.tls ? { ...settings.tls, servername: settings.host } : undefined,
    lazyConnect: true,
    connectTimeout: settings.timeoutMs,
    commandTimeout: settings.timeoutMs,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    enableOfflineQueue: false,
    // The ready check sends INFO, which Lapse's user need not be allowed.
    enableReadyCheck: false,
  });
  // NB. ioredis reports a refused login only as an event, then fails the call with "Connection is
  // closed": keep the event so the message says why.
  let connectionError: unknown;
  redis.on('error', (error) => (connectionError = error));
  let onAbort: () => void = () => undefined;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => {
      redis.disconnect();
      reject(deadline(target, step));
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    return await Promise.race([
      aborted,
      (async () => {
        await redis.connect();
        return await work(redis);
      })(),
    ]);
  } catch (error) {
    if (error instanceof LapseError) throw error;
    if (signal.aborted) throw deadline(target, step);
    const generic = error instanceof Error && /Connection is closed|Stream isn't writeable/.test(error.message);
    throw failure(target, step, generic && connectionError ? connectionError : error, settings);
  } finally {
    signal.removeEventListener('abort', onAbort);
    redis.disconnect();
  }
}

/** Whether an error is Redis refusing a command for lack of ACL permission. */
export function isNoPermission(error: unknown): boolean {
  return error instanceof Error && error.message.startsWith('NOPERM');
}

function deadline(target: TargetConfig, step: RedisStep): LapseError {
  return new LapseError('connector_timeout', `redis target ${target.name}: could not ${step.doing} before the deadline`, { where: `targets.${target.name}` });
}

// NB. No `cause`: the original error could still carry what `secrets` blanked out.
function failure(target: TargetConfig, step: RedisStep, error: unknown, settings: { host: string; port: number; username: string }): LapseError {
  let message = error instanceof Error ? error.message : String(error);
  for (const secret of step.secrets ?? []) if (secret) message = message.split(secret).join('[redacted]');
  const hint = /WRONGPASS|NOAUTH/.test(message)
    ? `check settings.username ("${settings.username}") and the password reference`
    : /ECONNREFUSED|ETIMEDOUT|ENOTFOUND|EHOSTUNREACH|Connection is closed/.test(message)
      ? `check that Redis listens on ${settings.host}:${settings.port} and that settings.tls matches the server`
      : undefined;
  return new LapseError('connector_failed', `redis target ${target.name}: could not ${step.doing}: ${message.slice(0, 500)}`, {
    where: `targets.${target.name}`,
    ...(hint ? { hint } : {}),
  });
}
