import { LapseError } from './errors.js';
import type { ApprovalStage, PolicyDecision } from './policy/types.js';
import type { Principal } from './principal.js';

/**
 * A request for access (or for an extension of a grant, or a break-glass activation) and where it
 * stands. Final states never change again.
 */
export const REQUEST_STATUSES = ['pending', 'approved', 'denied', 'cancelled', 'timed_out'] as const;
export type RequestStatus = (typeof REQUEST_STATUSES)[number];
export const REQUEST_KINDS = ['access', 'extension', 'break_glass'] as const;
export type RequestKind = (typeof REQUEST_KINDS)[number];

export const FINAL_REQUEST_STATUSES: readonly RequestStatus[] = ['approved', 'denied', 'cancelled', 'timed_out'];

export interface AccessRequest {
  readonly id: string;
  readonly kind: RequestKind;
  /** The requester as they were when asking: groups are a snapshot, decisions never re-read them. */
  readonly principal: Principal;
  readonly target: string;
  readonly entitlement: string;
  readonly durationMs: number;
  readonly reason: string;
  readonly ticket: string | null;
  /** Values the connector needs from the requester (e.g. `sshPublicKey`); not secrets. */
  readonly parameters: Readonly<Record<string, string>>;
  readonly status: RequestStatus;
  readonly policy: string | null;
  readonly policyVersion: string;
  readonly reasons: readonly string[];
  readonly stages: readonly ApprovalStage[];
  /** Index into `stages` of the stage now collecting approvals. */
  readonly currentStage: number;
  /** For access and break-glass: the grant it produced. For extension: the grant it extends. */
  readonly grantId: string | null;
  readonly createdAt: Date;
  readonly decidedAt: Date | null;
  /** When a pending request times out. */
  readonly pendingUntil: Date | null;
}

export function isFinal(status: RequestStatus): boolean {
  return FINAL_REQUEST_STATUSES.includes(status);
}

export interface NewRequest {
  readonly id: string;
  readonly kind: RequestKind;
  readonly principal: Principal;
  readonly target: string;
  readonly entitlement: string;
  readonly reason: string;
  readonly ticket: string | null;
  readonly parameters: Readonly<Record<string, string>>;
  readonly grantId: string | null;
}

/** The request a policy decision produces. A denied request is stored too: denials are history. */
export function decideRequest(input: NewRequest, decision: PolicyDecision, now: Date): AccessRequest {
  const status: RequestStatus = decision.outcome;
  return {
    ...input,
    durationMs: decision.durationMs,
    status,
    policy: decision.policy,
    policyVersion: decision.policyVersion,
    reasons: decision.reasons,
    stages: decision.outcome === 'pending' ? decision.stages : [],
    currentStage: 0,
    createdAt: now,
    decidedAt: status === 'pending' ? null : now,
    pendingUntil: status === 'pending' ? new Date(now.getTime() + decision.pendingTimeoutMs) : null,
  };
}

function requirePending(request: AccessRequest, action: string): void {
  if (request.status !== 'pending') {
    throw new LapseError('invalid_transition', `cannot ${action} request ${request.id}: it is already ${request.status}`, {
      where: request.id,
      hint: 'Only pending requests can change; submit a new request instead.',
    });
  }
}

/** The requester withdraws a pending request. */
export function cancelRequest(request: AccessRequest, by: string, now: Date): AccessRequest {
  if (by !== request.principal.id) {
    throw new LapseError('forbidden', `only the requester can cancel request ${request.id}`, { where: request.id });
  }
  requirePending(request, 'cancel');
  return { ...request, status: 'cancelled', decidedAt: now, pendingUntil: null };
}

/** The requester was deprovisioned: their pending request closes as cancelled (by the system, not by them). */
export function withdrawForDeprovisioning(request: AccessRequest, now: Date): AccessRequest {
  requirePending(request, 'withdraw');
  return { ...request, status: 'cancelled', decidedAt: now, pendingUntil: null };
}

/** Nobody decided in time. A no-op error if the request was decided meanwhile. */
export function timeOutRequest(request: AccessRequest, now: Date): AccessRequest {
  requirePending(request, 'time out');
  if (request.pendingUntil && now.getTime() < request.pendingUntil.getTime()) {
    throw new LapseError('invalid_transition', `request ${request.id} is not due to time out yet`, { where: request.id });
  }
  return { ...request, status: 'timed_out', decidedAt: now, pendingUntil: null };
}
