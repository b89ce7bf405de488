import { durationFromMs, timestampFromDate } from '@bufbuild/protobuf/wkt';
import { riskBinding } from '../risk.js';
import { oncallBinding, SERVICE_LABEL, ticketBinding, type TicketSystem } from './facts.js';
import type { PolicyInput } from './types.js';

/**
 * The variables of the CEL context, checked at config load: an expression naming anything else
 * (a typo) is refused rather than silently false.
 */
export const CONTEXT_VARIABLES = ['principal', 'entitlement', 'target', 'request', 'time', 'client', 'oncall', 'ticket', 'risk'] as const;

/** Variables whose values the engine must look up in another system before deciding. */
export const LOOKED_UP_VARIABLES = ['oncall', 'ticket'] as const;

/**
 * The CEL context a policy expression sees (documented in docs/policies.md). Integers are bigint
 * because CEL ints are 64-bit; a JS number would be a CEL double and `time.hour >= 8` would not
 * type-check.
 */
export function celContext(input: PolicyInput, durationMs: number, timezone: string, ticketSystem?: TicketSystem): Record<string, unknown> {
  const local = localTime(input.now, timezone);
  const targetLabels = { ...input.labels?.target };
  const entitlementLabels = { ...input.labels?.entitlement };
  const mfaAgeSeconds = input.client.mfaAt ? Math.max(0, Math.floor((input.now.getTime() - input.client.mfaAt.getTime()) / 1000)) : -1;
  return {
    principal: { id: input.principal.id, kind: input.principal.kind, groups: [...input.principal.groups] },
    entitlement: { name: input.entitlement, target: input.target, id: `${input.target}/${input.entitlement}`, labels: entitlementLabels },
    target: { name: input.target, labels: targetLabels },
    request: {
      kind: input.kind,
      duration: durationFromMs(durationMs),
      reason: input.reason,
      ticket: input.ticket ?? '',
      breakGlass: false,
    },
    time: { now: timestampFromDate(input.now), ...local },
    client: { ip: input.client.ip ?? '', userAgent: input.client.userAgent ?? '', mfaAgeSeconds: BigInt(mfaAgeSeconds) },
    oncall: oncallBinding(input.facts?.oncall, requestService(input)),
    ticket: ticketBinding(ticketSystem ? input.facts?.tickets?.[ticketSystem] : undefined, input.ticket),
    // Computed by the server from history (src/domain/risk.ts), never taken from the request.
    risk: riskBinding(input.risk),
  } satisfies Record<(typeof CONTEXT_VARIABLES)[number], unknown>;
}

/** The service a request is for: the entitlement's `service` label, else its target's. */
export function requestService(input: Pick<PolicyInput, 'labels'>): string | undefined {
  return input.labels?.entitlement[SERVICE_LABEL] ?? input.labels?.target[SERVICE_LABEL];
}

const formatters = new Map<string, Intl.DateTimeFormat>();
const WEEKDAYS: Record<string, bigint> = { Sun: 0n, Mon: 1n, Tue: 2n, Wed: 3n, Thu: 4n, Fri: 5n, Sat: 6n };

export function localTime(now: Date, timezone: string): { hour: bigint; minute: bigint; weekday: bigint; date: string } {
  let formatter = formatters.get(timezone);
  if (!formatter) {
    formatter = new Intl.DateTimeFormat('en-US', {
      timeZone: timezone,
      hourCycle: 'h23',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      weekday: 'short',
    });
    formatters.set(timezone, formatter);
  }
  const parts: Record<string, string> = {};
  for (const part of formatter.formatToParts(now)) parts[part.type] = part.value;
  return {
    hour: BigInt(Number(parts.hour)),
    minute: BigInt(Number(parts.minute)),
    weekday: WEEKDAYS[parts.weekday ?? 'Sun'] ?? 0n,
    date: `${parts.year}-${parts.month}-${parts.day}`,
  };
}

/** Whether a time zone name is known to this runtime (checked at config load). */
export function isKnownTimezone(timezone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: timezone });
    return true;
  } catch {
    return false;
  }
}
