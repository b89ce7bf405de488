import { z } from 'zod';
import { parseDuration } from '../domain/duration.js';
import { NAME_PATTERN } from '../domain/input-schemas.js';
import { boundedText } from '../domain/text.js';

/**
 * The `integrations:` block: systems Lapse asks for facts a policy reads (on-call, tickets).
 * Secrets are references (checked in integrations.ts), URLs are https (plain http only to this
 * machine, for tests), and TLS verification cannot be turned off: a forged "you are on call"
 * answer would auto-approve access.
 */
const boundedDuration = (fallback: string, minMs: number, maxMs: number, what: string) =>
  z
    .string()
    .max(32)
    .prefault(fallback)
    .transform((value, ctx) => {
      let ms: number;
      try {
        // NB. parseDuration refuses zero (a zero grant makes no sense); a zero cache TTL does.
        ms = minMs === 0 && /^0+(ms|s|m|h)?$/.test(value.trim()) ? 0 : parseDuration(value);
      } catch {
        ctx.addIssue({ code: 'custom', message: `"${value}" is not a duration: write e.g. 2s, 500ms, 1m` });
        return z.NEVER;
      }
      if (ms < minMs || ms > maxMs) {
        ctx.addIssue({ code: 'custom', message: `${what} must be between ${minMs} ms and ${maxMs / 1000} s` });
        return z.NEVER;
      }
      return ms;
    });

/** How long one lookup may take before it counts as failed (the request waits at most this long). */
const timeout = boundedDuration('3s', 100, 10_000, 'timeout');
/** How long an answer is reused; 0s asks every time. */
const cacheTtl = boundedDuration('60s', 0, 3_600_000, 'cacheTtl');

const httpsUrl = z.url({ protocol: /^https?$/, message: 'write an https:// URL' }).max(2048);
/** A secret reference (`${env:NAME}` or `${file:path}`); literal values are refused in integrations.ts. */
const secret = boundedText(1024).min(1);
const tls = z
  .object({ ca: boundedText(65_536, { multiline: true }).optional() })
  .strict()
  .prefault({});

/** A PagerDuty object id (user, escalation policy, schedule): letters and digits, e.g. PABC123. */
const pagerDutyId = z
  .string()
  .max(32)
  .regex(/^[A-Z0-9]{2,32}$/, 'a PagerDuty id is upper-case letters and digits, e.g. PABC123');
const serviceName = z.string().max(63).regex(NAME_PATTERN, 'service names use lower-case letters, digits, "_", "." and "-"');
const principalId = boundedText(256).min(1);
const email = z.email().max(254);

const pagerduty = z
  .object({
    apiUrl: httpsUrl.default('https://api.pagerduty.com'),
    token: secret,
    users: z.record(principalId, pagerDutyId).default({}),
    services: z
      .record(
        serviceName,
        z
          .object({
            escalationPolicies: z.array(pagerDutyId).max(50).default([]),
            schedules: z.array(pagerDutyId).max(50).default([]),
          })
          .strict()
          .refine((s) => s.escalationPolicies.length + s.schedules.length > 0, 'name at least one escalation policy or schedule'),
      )
      .refine((s) => Object.keys(s).length > 0 && Object.keys(s).length <= 500, 'map 1 to 500 services to escalation policies or schedules'),
    cacheTtl,
    timeout,
    tls,
  })
  .strict();

const oncallWebhook = z.object({ url: httpsUrl, secret, cacheTtl, timeout, tls }).strict();

const jira = z
  .object({
    url: httpsUrl,
    email,
    apiToken: secret,
    /** Status names that count as open; empty: every status outside Jira's "Done" category. */
    openStatuses: z.array(boundedText(100).min(1)).max(50).default([]),
    /** Principal id → Jira account id, for `assignedToRequester` when Jira hides emails. */
    accounts: z.record(principalId, boundedText(128).min(1)).default({}),
    cacheTtl: boundedDuration('30s', 0, 3_600_000, 'cacheTtl'),
    timeout,
    tls,
  })
  .strict();

const servicenow = z
  .object({
    url: httpsUrl,
    username: boundedText(256).min(1).optional(),
    password: secret.optional(),
    token: secret.optional(),
    table: z
      .string()
      .max(80)
      .regex(/^[a-z][a-z0-9_]{0,79}$/, 'a ServiceNow table name, e.g. incident or change_request')
      .default('incident'),
    /** `state` values that count as open (incident: 1 New, 2 In Progress, 3 On Hold). */
    openStates: z
      .array(
        z
          .string()
          .max(40)
          .regex(/^[A-Za-z0-9_-]+$/, 'a state value, e.g. 2'),
      )
      .min(1)
      .max(50)
      .default(['1', '2', '3']),
    cacheTtl: boundedDuration('30s', 0, 3_600_000, 'cacheTtl'),
    timeout,
    tls,
  })
  .strict()
  .refine((s) => (s.token !== undefined) !== (s.username !== undefined || s.password !== undefined), {
    message: 'give either username and password (basic auth) or token (OAuth bearer), not both',
  })
  .refine((s) => s.token !== undefined || (s.username !== undefined && s.password !== undefined), {
    message: 'basic auth needs both username and password',
  });

export const integrationsSchema = z
  .object({
    /** How principals map to email addresses (PagerDuty user lookup, ticket assignees). */
    people: z
      .object({
        emailDomain: z
          .string()
          .max(253)
          .regex(/^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$/, 'a domain name, e.g. example.com')
          .optional(),
        emails: z.record(principalId, email).default({}),
      })
      .strict()
      .prefault({}),
    pagerduty: pagerduty.optional(),
    oncallWebhook: oncallWebhook.optional(),
    jira: jira.optional(),
    servicenow: servicenow.optional(),
  })
  .strict()
  .refine((i) => !(i.pagerduty && i.oncallWebhook), {
    message: 'configure one on-call source: pagerduty or oncallWebhook, not both',
    path: ['oncallWebhook'],
  })
  .prefault({});

export type ParsedIntegrations = z.output<typeof integrationsSchema>;
