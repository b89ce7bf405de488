import { LapseError } from './errors.js';

/**
 * Access that Lapse provisions at a target. `provisioning` until the connector confirmed it;
 * `active` with an expiry counted from activation; `revoking` until the target confirmed removal
 * (retried forever); `revoked` at the end, or `failed` when it never became active.
 */
export const GRANT_STATUSES = ['provisioning', 'active', 'revoking', 'revoked', 'failed'] as const;
export type GrantStatus = (typeof GRANT_STATUSES)[number];
/** Grants that hold, or may still hold, access at the target (a revoke not yet confirmed counts). */
export const LIVE_GRANT_STATUSES = ['provisioning', 'active', 'revoking'] as const satisfies readonly GrantStatus[];

export type EndReason = 'expired' | 'released' | 'revoked' | 'provision_failed' | 'cancelled';

export interface Grant {
  readonly id: string;
  readonly requestId: string;
  readonly principalId: string;
  readonly target: string;
  readonly entitlement: string;
  readonly status: GrantStatus;
  /** Granted duration, including approved extensions. */
  readonly durationMs: number;
  readonly breakGlass: boolean;
  /** The request's parameters, passed to the connector on every call. */
  readonly parameters: Readonly<Record<string, string>>;
  readonly activatedAt: Date | null;
  readonly expiresAt: Date | null;
  readonly endReason: EndReason | null;
  readonly endedBy: string | null;
  readonly endedAt: Date | null;
  readonly extensions: number;
}

function invalid(grant: Grant, action: string, hint?: string): LapseError {
  return new LapseError('invalid_transition', `cannot ${action} grant ${grant.id}: it is ${grant.status}`, {
    where: grant.id,
    ...(hint ? { hint } : {}),
  });
}

/** The connector confirmed the access exists. Duration counts from here, not from the request. */
export function activateGrant(grant: Grant, now: Date): Grant {
  if (grant.status !== 'provisioning') throw invalid(grant, 'activate');
  return { ...grant, status: 'active', activatedAt: now, expiresAt: new Date(now.getTime() + grant.durationMs) };
}

/**
 * Starts taking access away: on expiry, release, admin revoke, or when provisioning is given up
 * (a provision that may have half-happened is cleaned up by the same idempotent revoke).
 */
export function beginRevoke(grant: Grant, reason: EndReason, by: string, now: Date): Grant {
  if (grant.status === 'revoking' || grant.status === 'revoked' || grant.status === 'failed') {
    throw invalid(grant, reason === 'expired' ? 'expire' : 'revoke', 'It is already ending.');
  }
  if (reason === 'expired' && (grant.expiresAt === null || now.getTime() < grant.expiresAt.getTime())) {
    throw invalid(grant, 'expire', 'It has not reached its expiry yet.');
  }
  return { ...grant, status: 'revoking', endReason: reason, endedBy: by, endedAt: now };
}

/** The target confirmed the access is gone (or an admin force-closed a stuck revoke). */
export function completeRevoke(grant: Grant, now: Date): Grant {
  if (grant.status !== 'revoking') throw invalid(grant, 'complete the revoke of');
  const neverActive = grant.activatedAt === null;
  return { ...grant, status: neverActive ? 'failed' : 'revoked', endedAt: now };
}

/** An approved extension: access stays continuous, the expiry moves out. */
export function extendGrant(grant: Grant, byMs: number): Grant {
  if (grant.status !== 'active' || grant.expiresAt === null) throw invalid(grant, 'extend', 'Only active grants can be extended.');
  // Break-glass is capped by breakGlass.maxDuration and skipped approval: it is never stretched.
  if (grant.breakGlass) {
    throw new LapseError('invalid_transition', `cannot extend grant ${grant.id}: it is a break-glass grant`, {
      where: grant.id,
      hint: 'Break glass again, or request the access normally.',
    });
  }
  return {
    ...grant,
    durationMs: grant.durationMs + byMs,
    expiresAt: new Date(grant.expiresAt.getTime() + byMs),
    extensions: grant.extensions + 1,
  };
}

/** Whether the grant gives access at `now`: active and strictly before its expiry (denies at expiresAt + 0). */
export function grantCovers(grant: Grant, now: Date): boolean {
  return grant.status === 'active' && grant.expiresAt !== null && now.getTime() < grant.expiresAt.getTime();
}
