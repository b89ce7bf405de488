import { formatDuration } from '../duration.js';
import type { Principal, SubjectSet } from '../principal.js';
import { candidatePolicies } from './candidates.js';
import type { PolicySet } from './compile.js';

export interface EntitlementTerms {
  readonly entitlement: string;
  readonly policy: string;
  readonly subjects: SubjectSet;
  readonly defaultDuration: string;
  readonly maxDuration: string;
  readonly approval: string;
  readonly requirements: readonly string[];
  readonly conditions: string | null;
  /** Facts looked up in other systems at request time ("on-call", "ticket in jira"): shown, not evaluated. */
  readonly lookups: readonly string[];
}

/**
 * Who may get what, on what terms: every (entitlement, policy) pair, in evaluation order. With a
 * principal, only the pairs whose subjects include it (conditions are shown, not evaluated).
 */
export function explainPolicies(
  set: PolicySet,
  entitlements: readonly { target: string; name: string }[],
  principal?: Pick<Principal, 'id' | 'groups'>,
): EntitlementTerms[] {
  const out: EntitlementTerms[] = [];
  for (const { target, name } of entitlements) {
    for (const { definition: def, lookups } of candidatePolicies(set, target, name, principal)) {
      const verify = def.require.ticketVerify;
      const verified = verify ? `, open in ${verify.system}${verify.assignedToRequester ? ' and assigned to the requester' : ''}` : '';
      const requirements = [
        ...(def.require.justificationMinLength > 0 ? [`reason of at least ${def.require.justificationMinLength} characters`] : []),
        ...(def.require.ticketPattern ? [`ticket matching ${def.require.ticketPattern}${verified}`] : []),
        ...(def.require.mfaMaxAgeMs !== undefined ? [`MFA within ${formatDuration(def.require.mfaMaxAgeMs)}`] : []),
      ];
      const stages = def.approval.stages
        .map((s) => `${s.quorum} of ${s.name} (${[...s.approvers.users.map((u) => `user ${u}`), ...s.approvers.groups.map((g) => `group ${g}`)].join(', ')})`)
        .join(', then ');
      const approval = def.autoApprove
        ? 'auto-approved'
        : def.autoApproveIf
          ? `auto-approved if ${def.autoApproveIf}${stages ? `, else ${stages}` : ''}`
          : stages || 'none (denied)';
      out.push({
        entitlement: `${target}/${name}`,
        policy: def.name,
        subjects: def.subjects,
        defaultDuration: formatDuration(def.duration.defaultMs),
        maxDuration: formatDuration(def.duration.maxMs),
        approval,
        requirements,
        conditions: def.conditions ?? null,
        lookups: [...(lookups.oncall ? ['on-call'] : []), ...(lookups.ticket ? [`ticket in ${lookups.ticket}`] : [])],
      });
    }
  }
  return out;
}
