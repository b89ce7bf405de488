import type { SubjectSet } from '../principal.js';
import type { TicketSystem } from './facts.js';
import type { ApprovalStage } from './types.js';

/**
 * One policy as configured, validated and with durations in milliseconds. Who (`subjects`) may
 * get what (`entitlements`, patterns like `prod-db/*`), for how long, with what proof, and who
 * approves.
 */
export interface PolicyDefinition {
  readonly name: string;
  readonly description: string;
  readonly subjects: SubjectSet;
  readonly entitlements: readonly string[];
  /** IANA time zone for `time.*` in conditions (default UTC). */
  readonly timezone: string;
  readonly duration: { readonly defaultMs: number; readonly maxMs: number };
  readonly extension: { readonly maxCount: number; readonly maxTotalMs: number; readonly requireApproval: boolean };
  readonly require: {
    readonly justificationMinLength: number;
    readonly ticketPattern: string | undefined;
    /**
     * The ticket must exist and be open in this system (and, with assignedToRequester, be the
     * requester's): looked up before the decision; a failed lookup refuses the request as retryable.
     */
    readonly ticketVerify?: { readonly system: TicketSystem; readonly assignedToRequester: boolean };
    readonly mfaMaxAgeMs: number | undefined;
  };
  /** CEL: must be true for the policy to apply at all. */
  readonly conditions: string | undefined;
  readonly autoApprove: boolean;
  /** CEL: when true, the request is approved without reviews. */
  readonly autoApproveIf: string | undefined;
  readonly approval: { readonly pendingTimeoutMs: number; readonly stages: readonly ApprovalStage[] };
}

/** `*` matches everything; `t/*` every entitlement of target t; `*\/e` entitlement e on any target. */
export function matchesEntitlementPattern(pattern: string, target: string, entitlement: string): boolean {
  if (pattern === '*' || pattern === '*/*') return true;
  const slash = pattern.indexOf('/');
  if (slash < 0) return false;
  const t = pattern.slice(0, slash);
  const e = pattern.slice(slash + 1);
  return (t === '*' || t === target) && (e === '*' || e === entitlement);
}
