/**
 * Facts about the world a policy may read that Lapse has to ask another system for: is the
 * requester on call (PagerDuty, or an on-call webhook), and does the ticket they named exist, is
 * it open, is it theirs (Jira, ServiceNow). The engine looks them up before the decision, with a
 * deadline and a cache; evaluation stays pure and only reads them.
 */

export const TICKET_SYSTEMS = ['jira', 'servicenow'] as const;
export type TicketSystem = (typeof TICKET_SYSTEMS)[number];

export type OncallSource = 'pagerduty' | 'webhook';

/** The answer to "is this person on call, and for which services, now". */
export interface OncallFact {
  readonly source: OncallSource;
  /** The provider answered. False after a failure or timeout, and then `active` is false too. */
  readonly checked: boolean;
  /** On call for at least one service. */
  readonly active: boolean;
  /** The services (names from config) the person is on call for. */
  readonly services: readonly string[];
  /** What went wrong when `checked` is false (never holds a credential). */
  readonly error?: string;
}

/** The answer to "does ticket KEY exist in SYSTEM, is it open, who has it". */
export interface TicketFact {
  readonly system: TicketSystem;
  readonly key: string;
  /** The ticket system answered (found or not found). False after a failure, timeout or when no ticket was given. */
  readonly checked: boolean;
  readonly exists: boolean;
  readonly open: boolean;
  /** The status as the ticket system names it ("In Progress"), or "". */
  readonly status: string;
  readonly summary: string;
  /** The assignee's email (or name when the system hides it), or "". */
  readonly assignee: string;
  readonly assignedToRequester: boolean;
  readonly error?: string;
}

/** Everything looked up for one request; absent parts were not needed by any candidate policy. */
export interface PolicyFacts {
  readonly oncall?: OncallFact;
  readonly tickets?: Partial<Readonly<Record<TicketSystem, TicketFact>>>;
}

/** The label on an entitlement (or, failing that, its target) that names the service it belongs to. */
export const SERVICE_LABEL = 'service';

/** A ticket fact for when nothing was (or could be) looked up. */
export function uncheckedTicket(system: TicketSystem, key: string, error?: string): TicketFact {
  return {
    system,
    key,
    checked: false,
    exists: false,
    open: false,
    status: '',
    summary: '',
    assignee: '',
    assignedToRequester: false,
    ...(error ? { error } : {}),
  };
}

/** CEL's view of `oncall`: missing facts read as "not on call, not checked". */
export function oncallBinding(fact: OncallFact | undefined, service: string | undefined): Record<string, unknown> {
  const services = fact?.active ? [...fact.services] : [];
  return {
    active: fact?.active === true,
    checked: fact?.checked === true,
    source: fact?.source ?? '',
    services,
    forTarget: service !== undefined && services.includes(service),
  };
}

/** CEL's view of `ticket` for the system a policy reads. */
export function ticketBinding(fact: TicketFact | undefined, ticket: string | undefined): Record<string, unknown> {
  const f = fact ?? uncheckedTicket('jira', ticket ?? '');
  return {
    checked: f.checked,
    exists: f.exists,
    open: f.open,
    status: f.status,
    summary: f.summary,
    assignee: f.assignee,
    assignedToRequester: f.assignedToRequester,
    system: fact?.system ?? '',
    key: ticket ?? '',
  };
}

/** One line for a decision's reasons (and the audit): what the lookup said. */
export function describeOncall(fact: OncallFact): string {
  if (!fact.checked) return `on-call (${fact.source}): lookup failed (${fact.error ?? 'unknown error'}), treated as not on call`;
  return fact.active ? `on-call (${fact.source}): on call for ${fact.services.join(', ')}` : `on-call (${fact.source}): not on call`;
}

export function describeTicket(fact: TicketFact): string {
  const at = `ticket ${fact.key} (${fact.system})`;
  if (!fact.checked) return `${at}: not verified (${fact.error ?? 'no ticket given'})`;
  if (!fact.exists) return `${at}: does not exist`;
  return `${at}: ${fact.open ? 'open' : 'closed'}, status "${fact.status}"${fact.assignedToRequester ? ', assigned to the requester' : ''}`;
}
