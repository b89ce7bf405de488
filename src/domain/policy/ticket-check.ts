import type { CompiledPolicy } from './compile.js';
import type { DenialCode, PolicyInput } from './types.js';

/**
 * `require.ticket.verify`: the ticket (already matching the pattern) must exist and be open in
 * the named system, and with `assignedToRequester` be assigned to the requester.
 *
 * NB. A lookup that failed (the ticket system down, slow or refusing Lapse's credentials) is not
 * "no ticket": it is `ticket_unverified`, which the engine turns into a retryable refusal. Failing
 * open would let anyone past the requirement while the ticket system is unreachable; failing as
 * "not found" would tell the requester their ticket is wrong when it is not. Break-glass remains
 * the path for emergencies.
 */
export function ticketDenial(policy: CompiledPolicy, input: PolicyInput): { code: DenialCode; message: string; hint: string } | undefined {
  const verify = policy.definition.require.ticketVerify;
  if (!verify || input.ticket === undefined) return undefined;
  const name = policy.definition.name;
  const fact = input.facts?.tickets?.[verify.system];
  const at = `ticket ${input.ticket}`;
  const system = verify.system === 'jira' ? 'Jira' : 'ServiceNow';
  if (!fact || !fact.checked) {
    return {
      code: 'ticket_unverified',
      message: `policy ${name} needs ${at} verified in ${system}, and ${system} could not be asked${fact?.error ? `: ${fact.error}` : ''}`,
      hint: `Try again in a minute; if ${system} stays unreachable, ask an admin (or use break-glass in an emergency).`,
    };
  }
  if (!fact.exists) {
    return {
      code: 'ticket_not_found',
      message: `${at} does not exist in ${system} (or Lapse may not see it)`,
      hint: `Give the key of an existing ${system} ticket; policy ${name} verifies it.`,
    };
  }
  if (!fact.open) {
    return {
      code: 'ticket_closed',
      message: `${at} is ${fact.status ? `"${fact.status}"` : 'closed'} in ${system}; policy ${name} needs an open ticket`,
      hint: 'Reopen the ticket or give the one you are working on.',
    };
  }
  if (verify.assignedToRequester && !fact.assignedToRequester) {
    return {
      code: 'ticket_not_assigned',
      message: `${at} is assigned to ${fact.assignee || 'nobody'}, not to ${input.principal.id}; policy ${name} needs the requester's own ticket`,
      hint: 'Assign the ticket to yourself in the ticket system, then ask again.',
    };
  }
  return undefined;
}
