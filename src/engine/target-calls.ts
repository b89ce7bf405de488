import type { GrantSpec } from '../connectors/index.js';
import { LapseError } from '../domain/errors.js';
import { type StoredGrant } from '../store/index.js';
import { type EngineContext, type ResolvedEntitlement } from './context.js';

/**
 * Calls to target systems and their shared rules: what a connector is told about a grant, the
 * deadline of every call, how failures are retried. Used by provisioning, revocation, extension
 * and reconciliation alike.
 */

/** Extra room in the target-side backstop for the gap between provisioning and activation. */
const BACKSTOP_SLACK_MS = 60_000;

export function specFor(grant: StoredGrant, resolved: ResolvedEntitlement, now: Date): GrantSpec {
  const expiresAt = grant.expiresAt?.getTime() ?? now.getTime() + grant.durationMs + BACKSTOP_SLACK_MS;
  return {
    grantId: grant.id,
    principalId: grant.principalId,
    target: resolved.target,
    entitlement: resolved.entitlement,
    durationMs: grant.durationMs,
    notAfter: new Date(expiresAt),
    parameters: grant.parameters,
  };
}

/** Runs a connector call with the configured deadline (see withDeadline). */
export async function callConnector<T>(context: EngineContext, what: string, call: (signal: AbortSignal) => Promise<T>): Promise<T> {
  return withDeadline(context.config().scheduler.connectorTimeoutMs, what, call);
}

/** The call gets an AbortSignal; one that ignores it is still cut off at the deadline. */
export async function withDeadline<T>(timeoutMs: number, what: string, call: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const error = new LapseError('connector_timeout', `${what} did not finish within ${timeoutMs} ms`, {
        hint: 'Check that the target is reachable from here and not overloaded, or raise scheduler.connectorTimeout.',
      });
      controller.abort(error);
      reject(error);
    }, timeoutMs);
  });
  try {
    return await Promise.race([call(controller.signal), deadline]);
  } finally {
    clearTimeout(timer);
  }
}

export function errorMessage(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).slice(0, 2000);
}

/** Capped exponential backoff with jitter: min, 2·min, 4·min… up to max, each scaled by 0.5–1. */
export function backoffMs(attempt: number, minMs: number, maxMs: number, random: () => number = Math.random): number {
  const base = Math.min(maxMs, minMs * 2 ** Math.min(30, Math.max(0, attempt - 1)));
  return Math.max(minMs / 2, Math.round(base * (0.5 + random() / 2)));
}
