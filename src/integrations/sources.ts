import type { IntegrationsConfig } from '../config/types.js';
import type { OncallFact, OncallSource, TicketFact, TicketSystem } from '../domain/policy/index.js';
import { uncheckedTicket } from '../domain/policy/index.js';
import { AnswerCache } from './cache.js';
import { LookupFailure } from './http.js';
import { jiraTicket } from './jira.js';
import { webhookOncall } from './oncall-webhook.js';
import { pagerDutyServices } from './pagerduty.js';
import { serviceNowTicket } from './servicenow.js';

/**
 * The configured integrations as fact sources for one configuration: each lookup has the
 * integration's deadline, answers are cached for its `cacheTtl`, and a lookup never throws: a
 * failure or timeout is a fact with `checked: false` and the error (without credentials).
 */
export interface PolicyInputSources {
  readonly oncallSource: OncallSource | undefined;
  readonly ticketSystems: readonly TicketSystem[];
  /** Whether `principalId` is on call; `services` are the ones the request is about (the webhook is told them). */
  oncall(principalId: string, services: readonly string[], signal: AbortSignal): Promise<OncallFact>;
  ticket(system: TicketSystem, key: string, principalId: string, signal: AbortSignal): Promise<TicketFact>;
}

/** `clock`: monotonic milliseconds for cache expiry (tests pass their own). */
export function policyInputSources(config: IntegrationsConfig, clock: () => number = () => performance.now()): PolicyInputSources {
  const { pagerduty, oncallWebhook, people } = config;
  const oncallEndpoint = pagerduty ?? oncallWebhook;
  const oncallSource: OncallSource | undefined = pagerduty ? 'pagerduty' : oncallWebhook ? 'webhook' : undefined;
  const oncallCache = new AnswerCache<OncallFact>(oncallEndpoint?.cacheTtlMs ?? 0, clock);
  const ticketCaches = {
    jira: new AnswerCache<TicketFact>(config.jira?.cacheTtlMs ?? 0, clock),
    servicenow: new AnswerCache<TicketFact>(config.servicenow?.cacheTtlMs ?? 0, clock),
  };

  return {
    oncallSource,
    ticketSystems: (['jira', 'servicenow'] as const).filter((s) => config[s] !== undefined),

    oncall(principalId, services, signal) {
      if (!oncallSource || !oncallEndpoint)
        return Promise.resolve({ source: 'webhook', checked: false, active: false, services: [], error: 'no on-call source' });
      const key = oncallSource === 'pagerduty' ? principalId : `${principalId}\n${[...services].sort().join(',')}`;
      return oncallCache.get(
        key,
        async () => {
          try {
            const answer = await withDeadline(oncallEndpoint.timeoutMs, signal, (s) =>
              pagerduty
                ? pagerDutyServices(pagerduty, people, principalId, s).then((list) => ({ active: list.length > 0, services: list }))
                : webhookOncall(oncallWebhook!, principalId, services, s),
            );
            return { source: oncallSource, checked: true, ...answer };
          } catch (error) {
            return { source: oncallSource, checked: false, active: false, services: [], error: describe(error) };
          }
        },
        (fact) => fact.checked,
      );
    },

    ticket(system, key, principalId, signal) {
      const jira = config.jira;
      const servicenow = config.servicenow;
      const settings = system === 'jira' ? jira : servicenow;
      if (!settings) return Promise.resolve(uncheckedTicket(system, key, `${system} is not configured`));
      return ticketCaches[system].get(
        `${key.toUpperCase()}\n${principalId}`,
        async () => {
          try {
            return await withDeadline(settings.timeoutMs, signal, (s) =>
              system === 'jira' ? jiraTicket(jira!, people, key, principalId, s) : serviceNowTicket(servicenow!, people, key, principalId, s),
            );
          } catch (error) {
            return uncheckedTicket(system, key, describe(error));
          }
        },
        (fact) => fact.checked,
      );
    },
  };
}

/** Runs `work` with a signal that aborts at the caller's deadline or after `ms`, whichever is first. */
async function withDeadline<T>(ms: number, signal: AbortSignal, work: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const deadline = AbortSignal.any([signal, AbortSignal.timeout(ms)]);
  let stop: (() => void) | undefined;
  // NB. Raced as well as passed down: the abort must win even where the work does not listen.
  const aborted = new Promise<never>((_, reject) => {
    stop = () => reject(new LookupFailure(`no answer within ${ms} ms`));
    if (deadline.aborted) stop();
    else deadline.addEventListener('abort', stop, { once: true });
  });
  try {
    return await Promise.race([work(deadline), aborted]);
  } finally {
    if (stop) deadline.removeEventListener('abort', stop);
  }
}

function describe(error: unknown): string {
  return (error instanceof LookupFailure ? error.message : `unexpected error: ${(error as Error).message}`).slice(0, 500);
}
