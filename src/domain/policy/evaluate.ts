import { formatDuration } from '../duration.js';
import { inSubjectSet } from '../principal.js';
import type { CompiledPolicy, PolicySet } from './compile.js';
import { celContext } from './context.js';
import { matchesEntitlementPattern } from './definition.js';
import { describeOncall, describeTicket } from './facts.js';
import type { DenialCode, PolicyDecision, PolicyInput } from './types.js';
import { ticketDenial } from './ticket-check.js';

/** What the looked-up facts a policy reads said, for the decision's reasons (once per fact). */
function factReasons(policy: CompiledPolicy, input: PolicyInput): string[] {
  const out: string[] = [];
  const oncall = input.facts?.oncall;
  if (policy.lookups.oncall && oncall) out.push(describeOncall(oncall));
  const ticket = policy.lookups.ticket ? input.facts?.tickets?.[policy.lookups.ticket] : undefined;
  if (ticket) out.push(describeTicket(ticket));
  return out;
}

function describeResult(result: true | false | { error: string }): string {
  return result === true ? 'true' : result === false ? 'false' : `error (${result.error}), treated as false`;
}

/**
 * Decides a request. Policies are tried in file order; the first whose subjects contain the
 * principal, whose entitlement patterns match and whose `conditions` hold governs. Its terms are
 * then checked one by one, and the first unmet term is the denial. Pure: `input.now` is the clock.
 */
export function evaluatePolicy(set: PolicySet, input: PolicyInput): PolicyDecision {
  const reasons: string[] = [];
  const id = `${input.target}/${input.entitlement}`;
  let governing: CompiledPolicy | undefined;
  let durationMs = 0;
  let context: Record<string, unknown> | undefined;
  for (const policy of set.policies) {
    const def = policy.definition;
    if (!def.entitlements.some((pattern) => matchesEntitlementPattern(pattern, input.target, input.entitlement))) continue;
    if (!inSubjectSet(input.principal, def.subjects)) {
      reasons.push(`policy ${def.name}: ${input.principal.id} is not among its subjects`);
      continue;
    }
    durationMs = input.durationMs ?? def.duration.defaultMs;
    context = policy.usesContext ? celContext(input, durationMs, def.timezone, policy.lookups.ticket) : undefined;
    for (const reason of factReasons(policy, input)) if (!reasons.includes(reason)) reasons.push(reason);
    if (policy.conditions) {
      const result = policy.conditions(context!);
      if (result !== true) {
        reasons.push(`policy ${def.name}: conditions ${describeResult(result)}`);
        continue;
      }
    }
    reasons.push(`matched policy ${def.name}`);
    governing = policy;
    break;
  }

  const deny = (code: DenialCode, message: string, hint?: string, policy: string | null = governing?.definition.name ?? null): PolicyDecision => ({
    outcome: 'denied',
    policy,
    policyVersion: set.version,
    reasons: [...reasons, message],
    denial: { code, message, ...(hint ? { hint } : {}) },
    stages: [],
    durationMs: Math.max(1, durationMs),
    pendingTimeoutMs: 0,
  });

  if (!governing) {
    return deny('not_eligible', `${input.principal.id} is not eligible for ${id}`, 'See `lapse policy explain` for what you may request.', null);
  }
  const def = governing.definition;
  if (durationMs > def.duration.maxMs) {
    return deny(
      'duration_too_long',
      `${formatDuration(durationMs)} is longer than the ${formatDuration(def.duration.maxMs)} policy ${def.name} allows for ${id}`,
      `Ask for ${formatDuration(def.duration.maxMs)} or less; you can extend later.`,
    );
  }
  if (input.reason.trim().length < def.require.justificationMinLength) {
    return deny(
      'justification_required',
      `policy ${def.name} needs a reason of at least ${def.require.justificationMinLength} characters`,
      'Say what you will do and why (e.g. the incident or change).',
    );
  }
  if (governing.ticket && !(input.ticket && governing.ticket.test(input.ticket))) {
    return deny(
      'ticket_required',
      input.ticket ? `ticket "${input.ticket}" does not match ${def.require.ticketPattern}` : `policy ${def.name} needs a ticket`,
      `Give a ticket matching ${def.require.ticketPattern}.`,
    );
  }
  const unverified = ticketDenial(governing, input);
  if (unverified) return deny(unverified.code, unverified.message, unverified.hint);
  if (def.require.mfaMaxAgeMs !== undefined) {
    const age = input.client.mfaAt ? input.now.getTime() - input.client.mfaAt.getTime() : Number.POSITIVE_INFINITY;
    if (age > def.require.mfaMaxAgeMs) {
      return deny(
        'mfa_required',
        `policy ${def.name} needs MFA within the last ${formatDuration(def.require.mfaMaxAgeMs)}`,
        'Complete MFA again (step-up), then repeat the request.',
      );
    }
  }

  const pending = (): PolicyDecision => ({
    outcome: 'pending',
    policy: def.name,
    policyVersion: set.version,
    reasons: [...reasons, `needs approval: ${def.approval.stages.map((s) => `${s.quorum} of ${s.name}`).join(', then ')}`],
    stages: def.approval.stages,
    durationMs,
    pendingTimeoutMs: def.approval.pendingTimeoutMs,
  });
  const approved = (why: string): PolicyDecision => ({
    outcome: 'approved',
    policy: def.name,
    policyVersion: set.version,
    reasons: [...reasons, why],
    stages: [],
    durationMs,
    pendingTimeoutMs: 0,
  });

  if (input.kind === 'extension') {
    const so = input.extension ?? { count: 0, totalMs: 0 };
    if (so.count >= def.extension.maxCount) {
      return deny(
        'extension_limit',
        `policy ${def.name} allows ${def.extension.maxCount} extension(s); this grant had ${so.count}`,
        'Request new access instead.',
      );
    }
    if (so.totalMs + durationMs > def.extension.maxTotalMs) {
      return deny(
        'extension_limit',
        `extending by ${formatDuration(durationMs)} would exceed the ${formatDuration(def.extension.maxTotalMs)} total policy ${def.name} allows`,
        'Ask for a shorter extension or request new access.',
      );
    }
    if (!def.extension.requireApproval) return approved('extension within policy limits; no approval required');
    return def.approval.stages.length > 0
      ? pending()
      : deny('no_approval_path', `policy ${def.name} requires approval for extensions but names no approval stages`, 'Ask an admin to fix the policy.');
  }

  if (def.autoApprove) return approved('auto-approved by policy');
  if (governing.autoApproveIf) {
    const result = governing.autoApproveIf(context!);
    if (result === true) return approved('autoApproveIf true');
    reasons.push(`autoApproveIf ${describeResult(result)}`);
  }
  if (def.approval.stages.length > 0) return pending();
  return deny(
    'no_approval_path',
    `policy ${def.name} neither auto-approves this request nor names approvers`,
    'Ask an admin to add approval stages to the policy.',
  );
}
