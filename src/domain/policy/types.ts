import type { Principal, SubjectSet } from '../principal.js';
import type { RiskAssessment } from '../risk.js';
import type { PolicyFacts } from './facts.js';

/** What a policy decides about: one request (or extension) as the engine sees it at submit time. */
export interface PolicyInput {
  readonly principal: Principal;
  readonly target: string;
  readonly entitlement: string;
  /** Requested duration; undefined means "the policy's default". */
  readonly durationMs: number | undefined;
  readonly reason: string;
  readonly ticket: string | undefined;
  readonly kind: 'access' | 'extension';
  /** For extensions: how many extensions the grant already had and its total granted duration so far. */
  readonly extension?: { readonly count: number; readonly totalMs: number };
  readonly client: {
    readonly ip?: string;
    readonly userAgent?: string;
    /** When the principal last completed MFA, if ever in this session. */
    readonly mfaAt?: Date;
  };
  /** The time of the decision, passed in: policy evaluation never reads a clock. */
  readonly now: Date;
  /** The labels of the requested target and entitlement (config), for `target.labels` and the request's service. */
  readonly labels?: { readonly target: Readonly<Record<string, string>>; readonly entitlement: Readonly<Record<string, string>> };
  /** On-call and ticket facts the engine looked up before the decision (see facts.ts). */
  readonly facts?: PolicyFacts;
  /** The risk the server computed from history (src/domain/risk.ts); absent reads as the neutral score. */
  readonly risk?: RiskAssessment;
}

export interface ApprovalStage {
  readonly name: string;
  readonly approvers: SubjectSet;
  /** Distinct eligible approvers needed; the requester never counts. */
  readonly quorum: number;
  /** Approvers of this stage must have completed MFA this recently (step-up), when set. */
  readonly mfaMaxAgeMs?: number;
}

export type DenialCode =
  | 'not_eligible'
  | 'condition_false'
  | 'duration_too_long'
  | 'justification_required'
  | 'ticket_required'
  | 'ticket_not_found'
  | 'ticket_closed'
  | 'ticket_not_assigned'
  | 'ticket_unverified'
  | 'mfa_required'
  | 'extension_limit'
  | 'no_approval_path';

export interface PolicyDecision {
  readonly outcome: 'denied' | 'approved' | 'pending';
  /** Name of the policy that governed the decision (null when no policy matched). */
  readonly policy: string | null;
  /** Hash of the effective configuration that decided. */
  readonly policyVersion: string;
  /** Human-readable reasons, in order, e.g. "matched policy sre-prod (group sre)", "autoApproveIf true". */
  readonly reasons: readonly string[];
  readonly denial?: { readonly code: DenialCode; readonly message: string; readonly hint?: string };
  /** Approval stages still to pass (empty unless outcome is 'pending'). */
  readonly stages: readonly ApprovalStage[];
  /** Effective duration: the requested one, or the policy default. */
  readonly durationMs: number;
  /** How long a pending request waits for approval before it times out. */
  readonly pendingTimeoutMs: number;
}
