import type { EffectiveConfig } from '../config/types.js';
import type { Principal } from '../domain/principal.js';
import {
  candidatePolicies,
  requestService,
  type CompiledPolicy,
  type OncallFact,
  type PolicyFacts,
  type PolicyInput,
  type TicketFact,
  type TicketSystem,
} from '../domain/policy/index.js';
import { policyInputSources, type PolicyInputSources } from '../integrations/index.js';
import type { EngineContext } from './context.js';

/**
 * The facts policies read from other systems (on-call, tickets), looked up BEFORE the decision's
 * transaction: evaluation is pure and runs inside it, and nothing slow outside Lapse may hold a
 * transaction open. Only what the candidate policies read is looked up (decided when the config
 * was compiled), each with its integration's deadline and cache; a failure is a fact too (not on
 * call, ticket unverified), logged as a warning and recorded in the decision's audit event.
 */
export class PolicyInputs {
  // NB. Sources (and their caches) belong to one configuration: a reload that changes a token or
  // a service map must not be answered from the old one's cache.
  private readonly byConfig = new WeakMap<EffectiveConfig, PolicyInputSources>();

  constructor(private readonly clock?: () => number) {}

  sourcesFor(config: EffectiveConfig): PolicyInputSources {
    let sources = this.byConfig.get(config);
    if (!sources) {
      sources = policyInputSources(config.integrations, this.clock);
      this.byConfig.set(config, sources);
    }
    return sources;
  }
}

/** The longest any lookup may take: the largest configurable integration timeout, as a backstop. */
const BACKSTOP_MS = 10_000;

export interface FactQuestion {
  readonly principal: Principal;
  readonly target: string;
  readonly entitlement: string;
  readonly ticket?: string | undefined;
}

/** The labels a request's policies see (`target.labels`, `entitlement.labels`, the request's service). */
export function requestLabels(config: EffectiveConfig, target: string, entitlement: string): NonNullable<PolicyInput['labels']> {
  const t = config.targets.get(target);
  return { target: t?.labels ?? {}, entitlement: t?.entitlements.get(entitlement)?.labels ?? {} };
}

/** Looks up what the policies that may decide this request read; `{}` (no I/O) when none reads anything. */
export async function gatherFacts(context: EngineContext, config: EffectiveConfig, question: FactQuestion): Promise<PolicyFacts> {
  const candidates = governingCandidates(config, question);
  const oncallNeeded = candidates.some((p) => p.lookups.oncall);
  const systems = [...new Set(candidates.flatMap((p) => (p.lookups.ticket ? [p.lookups.ticket] : [])))];
  const ticket = question.ticket;
  if (!oncallNeeded && (systems.length === 0 || ticket === undefined)) return {};
  const sources = context.policyInputs.sourcesFor(config);
  const service = requestService({ labels: requestLabels(config, question.target, question.entitlement) });
  const signal = AbortSignal.timeout(BACKSTOP_MS);
  const [oncall, tickets] = await Promise.all([
    oncallNeeded ? sources.oncall(question.principal.id, service ? [service] : [], signal) : undefined,
    ticket === undefined ? [] : Promise.all(systems.map((system) => sources.ticket(system, ticket, question.principal.id, signal))),
  ]);
  if (oncall && !oncall.checked) {
    context.logger.warn({ source: oncall.source, principal: question.principal.id, error: oncall.error }, 'on-call lookup failed; treating as not on call');
  }
  for (const fact of tickets) {
    if (!fact.checked)
      context.logger.warn({ system: fact.system, ticket: fact.key, error: fact.error }, 'ticket lookup failed; the ticket counts as unverified');
  }
  return {
    ...(oncall ? { oncall } : {}),
    ...(tickets.length > 0 ? { tickets: Object.fromEntries(tickets.map((t) => [t.system, t])) as Partial<Record<TicketSystem, TicketFact>> } : {}),
  };
}

/**
 * The policies that may govern: candidates in evaluation order up to the first without
 * `conditions` (it governs for sure if reached; later ones never decide this request).
 */
function governingCandidates(config: EffectiveConfig, question: FactQuestion): CompiledPolicy[] {
  const candidates = candidatePolicies(config.policies, question.target, question.entitlement, question.principal);
  const sure = candidates.findIndex((p) => p.conditions === undefined);
  return sure < 0 ? candidates : candidates.slice(0, sure + 1);
}

/** The facts as audit data: what was asked and answered (no summaries, no credentials). */
export function factsAuditData(facts: PolicyFacts): { inputs?: Record<string, unknown> } {
  const oncall = facts.oncall;
  const tickets = Object.values(facts.tickets ?? {});
  if (!oncall && tickets.length === 0) return {};
  return {
    inputs: {
      ...(oncall ? { oncall: oncallData(oncall) } : {}),
      ...(tickets.length > 0
        ? {
            tickets: tickets.map((t) => ({
              system: t.system,
              key: t.key,
              checked: t.checked,
              exists: t.exists,
              open: t.open,
              status: t.status,
              assignedToRequester: t.assignedToRequester,
              ...(t.error ? { error: t.error } : {}),
            })),
          }
        : {}),
    },
  };
}

function oncallData(fact: OncallFact): Record<string, unknown> {
  return { source: fact.source, checked: fact.checked, active: fact.active, services: [...fact.services], ...(fact.error ? { error: fact.error } : {}) };
}
