import { z } from 'zod';
import { NOTIFICATION_EVENTS, type NotificationEventName } from '../domain/notifications.js';
import { compileCondition, matchesEntitlementPattern } from '../domain/policy/index.js';
import { LapseError } from '../domain/errors.js';
import { boundedText } from '../domain/text.js';
import { duration, entitlementPattern, name, principalName, subjectSet, text } from './schema-parts.js';
import { resolveReference, type SecretContext } from './secrets.js';
import type { ChannelConfig, ChannelRetry, NotificationRule, NotificationsConfig, SlackChannelConfig, TeamsChannelConfig } from './types.js';

/**
 * `notifications:` in lapse.yaml (docs/notifications.md): named channels and the rules routing
 * events to them. Channels are a union on `type` so Slack, Teams and webhooks slot in beside email.
 */
const email = z.email({ message: 'write an email address, e.g. lapse@example.com' }).max(320);
const host = z
  .string()
  .min(1)
  .max(253)
  .regex(/^[A-Za-z0-9.:[\]-]+$/, 'write a host name or an IP address');

const retry = z
  .object({
    attempts: z.number().int().min(1).max(100).default(8),
    backoff: z
      .object({ min: duration.prefault('30s'), max: duration.prefault('1h') })
      .strict()
      .prefault({}),
  })
  .strict()
  .prefault({});

const emailChannel = z
  .object({
    type: z.literal('email'),
    from: email,
    smtp: z
      .object({
        host,
        port: z.number().int().min(1).max(65535).default(587),
        /** TLS from the first byte (port 465). Otherwise STARTTLS is required, unless allowInsecure. */
        secure: z.boolean().optional(),
        user: boundedText(256).optional(),
        password: text(1024).optional(),
        /** PEM of the CA that signed the server's certificate, when it is not a public one (by reference). */
        ca: text(65536).optional(),
        allowInsecure: z.boolean().default(false),
        timeout: duration.prefault('10s'),
        /** Pooled connections, one message at a time on each; most relays allow 10 to 20 per client. */
        connections: z.number().int().min(1).max(32).default(8),
      })
      .strict(),
    retry,
  })
  .strict();

/** A Slack conversation id: a public or private channel (C…, G…). */
const slackChannelId = z
  .string()
  .max(32)
  .regex(/^[CG][A-Z0-9]{2,30}$/, 'write a Slack channel id (e.g. C0123ABCD, from the channel details), not its #name');

const slackChannel = z
  .object({
    type: z.literal('slack'),
    /** The bot token (xoxb-…), by reference. */
    token: text(1024),
    /** The app's signing secret, by reference: verifies interaction payloads. */
    signingSecret: text(1024),
    /** Policies whose approval requests get Approve / Deny buttons. Default: none. */
    interactive: z
      .object({ policies: z.array(name('policy')).max(100).default([]) })
      .strict()
      .prefault({}),
    /** The Web API's base URL: only for a local fake or a proxy. */
    apiUrl: z
      .url({ protocol: /^https?$/, message: 'write an http(s) URL, e.g. https://slack.com/api/' })
      .max(2048)
      .default('https://slack.com/api/'),
    timeout: duration.prefault('10s'),
    retry,
  })
  .strict();

/** A Microsoft Teams Workflows (or legacy incoming-webhook) URL: it is the credential, so by reference only. */
const teamsChannel = z
  .object({
    type: z.literal('teams'),
    url: text(4096),
    /** PEM of a CA to trust besides the system's (a TLS-inspecting proxy), by reference. */
    ca: text(65536).optional(),
    timeout: duration.prefault('10s'),
    retry,
  })
  .strict();

const channel = z.discriminatedUnion('type', [emailChannel, slackChannel, teamsChannel], {
  error: (issue) => (issue.code === 'invalid_union' ? 'unknown channel type: this Lapse has "email", "slack" and "teams"' : undefined),
});

/** Outbound event webhooks (subscriptions are managed through the API): how they are sent. */
const webhooks = z
  .object({
    timeout: duration.prefault('10s'),
    retry: z
      .object({
        attempts: z.number().int().min(1).max(100).default(12),
        backoff: z
          .object({ min: duration.prefault('10s'), max: duration.prefault('1h') })
          .strict()
          .prefault({}),
      })
      .strict()
      .prefault({}),
  })
  .strict()
  .prefault({});

const rule = z
  .object({
    events: z
      .array(z.enum([...NOTIFICATION_EVENTS, '*']))
      .min(1)
      .max(20),
    channels: z.array(name('channel')).min(1).max(10),
    to: z
      .object({
        /** The people the event is about: approvers of the open stage, the requester. */
        audience: z.boolean().default(true),
        users: z.array(principalName).max(1000).default([]),
        groups: z.array(principalName).max(1000).default([]),
        addresses: z.array(email).max(50).default([]),
        /** Slack channels to post to (for rules naming a Slack channel). */
        slackChannels: z.array(slackChannelId).max(20).default([]),
      })
      .strict()
      .prefault({}),
    targets: z.array(entitlementPattern).max(100).optional(),
    policies: z.array(name('policy')).max(100).optional(),
    when: text(2000).optional(),
  })
  .strict();

export const notificationsSchema = z
  .object({
    channels: z.record(name('channel'), channel).default({}),
    rules: z.array(rule).max(200).default([]),
    approvals: z.object({ remindAfter: duration.optional(), escalateAfter: duration.optional(), escalateTo: subjectSet }).strict().prefault({}),
    endingSoon: duration.prefault('10m'),
    webhooks,
  })
  .strict()
  .prefault({});

/** How long one send over a channel may take. */
export function channelTimeoutMs(channel: ChannelConfig): number {
  return channel.type === 'email' ? channel.smtp.timeoutMs : channel.timeoutMs;
}

/** What a rule's `when` may read: `event` (docs/notifications.md lists its fields). */
export const NOTIFICATION_CONDITION_VARIABLES = ['event'] as const;

const LOOPBACK = new Set(['127.0.0.1', '::1', '[::1]', 'localhost']);

/**
 * The `notifications:` section as the engine uses it: secrets resolved, conditions compiled, and
 * the checks zod cannot express (channels and policies that exist, TLS unless explicitly off on
 * loopback). Problems go to `secrets.problems`, located by their path.
 */
export function resolveNotificationsConfig(
  parsed: z.output<typeof notificationsSchema>,
  secrets: SecretContext,
  known: { readonly policies: readonly string[]; readonly entitlements: readonly { target: string; name: string }[] },
): NotificationsConfig {
  const problems = secrets.problems;
  const channels = new Map<string, ChannelConfig>();
  for (const [channelName, c] of Object.entries(parsed.channels)) {
    const where = `notifications.channels.${channelName}`;
    if (c.type === 'slack') {
      channels.set(channelName, resolveSlackChannel(channelName, c, secrets, known.policies));
      continue;
    }
    if (c.retry.backoff.min > c.retry.backoff.max) problems.push(`${where}.retry.backoff: min must not exceed max`);
    const retry = { attempts: c.retry.attempts, backoffMinMs: c.retry.backoff.min, backoffMaxMs: c.retry.backoff.max };
    if (c.type === 'teams') {
      channels.set(channelName, resolveTeamsChannel(channelName, c, retry, secrets));
      continue;
    }
    if (c.smtp.password !== undefined && !c.smtp.password.startsWith('${')) {
      problems.push(`${where}.smtp.password: give the password as a reference (\${env:NAME} or \${file:path}), not inline`);
    }
    if (c.smtp.password !== undefined && c.smtp.user === undefined) problems.push(`${where}.smtp.user: set it, since a password is given`);
    if (c.smtp.allowInsecure && !LOOPBACK.has(c.smtp.host)) {
      problems.push(`${where}.smtp.allowInsecure: only allowed for a server on 127.0.0.1, localhost or ::1, not ${c.smtp.host}`);
    }
    const password = c.smtp.password === undefined ? undefined : resolveReference(c.smtp.password, `${where}.smtp.password`, secrets) || undefined;
    const ca = c.smtp.ca === undefined ? undefined : resolveReference(c.smtp.ca, `${where}.smtp.ca`, secrets) || undefined;
    if (ca !== undefined && !ca.includes('-----BEGIN CERTIFICATE-----')) problems.push(`${where}.smtp.ca: not a PEM certificate; give \${file:/path/ca.pem}`);
    channels.set(channelName, {
      name: channelName,
      type: 'email',
      from: c.from,
      smtp: {
        host: c.smtp.host,
        port: c.smtp.port,
        secure: c.smtp.secure ?? c.smtp.port === 465,
        user: c.smtp.user,
        password,
        ca,
        allowInsecure: c.smtp.allowInsecure,
        timeoutMs: c.smtp.timeout,
        connections: c.smtp.connections,
      },
      retry,
    });
  }
  const rules = parsed.rules.map((r, i): NotificationRule => {
    const where = `notifications.rules[${i}]`;
    r.channels.forEach((c, j) => {
      if (!channels.has(c) && !(c in parsed.channels)) problems.push(`${where}.channels[${j}]: there is no channel "${c}" under notifications.channels`);
    });
    r.policies?.forEach((p, j) => {
      if (!known.policies.includes(p)) problems.push(`${where}.policies[${j}]: there is no policy "${p}"`);
    });
    r.targets?.forEach((pattern, j) => {
      if (!known.entitlements.some((e) => matchesEntitlementPattern(pattern, e.target, e.name))) {
        problems.push(`${where}.targets[${j}]: "${pattern}" matches no configured entitlement; check the target and entitlement names`);
      }
    });
    if (r.to.slackChannels.length > 0 && !r.channels.some((c) => parsed.channels[c]?.type === 'slack')) {
      problems.push(`${where}.to.slackChannels: only a channel of type slack posts to Slack channels; name one under channels`);
    }
    if (!r.to.audience && r.to.users.length + r.to.groups.length + r.to.addresses.length + r.to.slackChannels.length === 0) {
      problems.push(`${where}.to: with audience false, name users, groups or addresses, or the rule reaches nobody`);
    }
    let when;
    if (r.when !== undefined) {
      try {
        when = compileCondition(r.when, `${where}.when`, NOTIFICATION_CONDITION_VARIABLES);
      } catch (error) {
        if (!(error instanceof LapseError)) throw error;
        problems.push(`${where}.when: ${error.message}`);
      }
    }
    const events: ReadonlySet<NotificationEventName> = new Set(r.events.includes('*') ? NOTIFICATION_EVENTS : (r.events as NotificationEventName[]));
    return {
      index: i,
      events,
      channels: r.channels,
      to: { audience: r.to.audience, users: r.to.users, groups: r.to.groups, addresses: r.to.addresses, slackChannels: r.to.slackChannels },
      targets: r.targets,
      policies: r.policies,
      when,
    };
  });
  const { remindAfter, escalateAfter, escalateTo } = parsed.approvals;
  if (escalateAfter !== undefined && escalateTo.users.length + escalateTo.groups.length === 0) {
    problems.push('notifications.approvals.escalateTo: name the users or groups to escalate to, since escalateAfter is set');
  }
  const hooks = parsed.webhooks;
  if (hooks.retry.backoff.min > hooks.retry.backoff.max) problems.push('notifications.webhooks.retry.backoff: min must not exceed max');
  return {
    channels,
    rules,
    approvals: { remindAfterMs: remindAfter, escalateAfterMs: escalateAfter, escalateTo },
    endingSoonMs: parsed.endingSoon,
    webhooks: {
      timeoutMs: hooks.timeout,
      retry: { attempts: hooks.retry.attempts, backoffMinMs: hooks.retry.backoff.min, backoffMaxMs: hooks.retry.backoff.max },
    },
  };
}

/**
 * A Slack channel's settings: token and signing secret by reference only, policies that exist,
 * and the Web API over https (plain http only to a fake on loopback).
 */
function resolveSlackChannel(channelName: string, c: z.output<typeof slackChannel>, secrets: SecretContext, policies: readonly string[]): SlackChannelConfig {
  const where = `notifications.channels.${channelName}`;
  const problems = secrets.problems;
  const secret = (value: string, field: string, shape: RegExp, example: string): string => {
    if (!value.startsWith('${')) {
      problems.push(`${where}.${field}: give it as a reference (\${env:NAME} or \${file:path}), not inline`);
      return '';
    }
    const resolved = resolveReference(value, `${where}.${field}`, secrets);
    if (resolved && !shape.test(resolved)) problems.push(`${where}.${field}: the value it refers to does not look like ${example}`);
    return resolved;
  };
  const token = secret(c.token, 'token', /^xox[bp]-[A-Za-z0-9-]{8,250}$/, 'a Slack bot token (xoxb-…)');
  const signingSecret = secret(c.signingSecret, 'signingSecret', /^[A-Za-z0-9]{16,128}$/, "a Slack app's signing secret (hex, from Basic Information)");
  c.interactive.policies.forEach((p, j) => {
    if (!policies.includes(p)) problems.push(`${where}.interactive.policies[${j}]: there is no policy "${p}"`);
  });
  const url = new URL(c.apiUrl);
  if (url.protocol === 'http:' && !LOOPBACK.has(url.hostname)) {
    problems.push(`${where}.apiUrl: plain http is only allowed to 127.0.0.1, localhost or ::1 (a local fake), not ${url.hostname}`);
  }
  if (c.retry.backoff.min > c.retry.backoff.max) problems.push(`${where}.retry.backoff: min must not exceed max`);
  return {
    name: channelName,
    type: 'slack',
    token,
    signingSecret,
    interactivePolicies: new Set(c.interactive.policies),
    apiUrl: c.apiUrl.endsWith('/') ? c.apiUrl : `${c.apiUrl}/`,
    timeoutMs: c.timeout,
    retry: { attempts: c.retry.attempts, backoffMinMs: c.retry.backoff.min, backoffMaxMs: c.retry.backoff.max },
  };
}

/**
 * A Teams channel: its URL resolved from the reference (it carries the signature that lets anyone
 * post, so inline URLs are refused), https only, on a host that looks like Teams or Power Automate
 * unless it is this machine (a test fake) or `ca` says a proxy sits in between.
 */
function resolveTeamsChannel(
  channelName: string,
  c: Extract<z.output<typeof channel>, { type: 'teams' }>,
  retry: ChannelRetry,
  secrets: SecretContext,
): TeamsChannelConfig {
  const where = `notifications.channels.${channelName}`;
  const problems = secrets.problems;
  if (!c.url.startsWith('${')) {
    problems.push(
      `${where}.url: the Teams webhook URL is a secret (anyone holding it can post); give it as a reference (\${env:NAME} or \${file:path}), not inline`,
    );
  }
  const url = resolveReference(c.url, `${where}.url`, secrets).trim();
  if (url && (!URL.canParse(url) || new URL(url).protocol !== 'https:')) {
    problems.push(`${where}.url: the value behind the reference must be an https:// URL (the Workflows "When a Teams webhook request is received" URL)`);
  }
  const ca = c.ca === undefined ? undefined : resolveReference(c.ca, `${where}.ca`, secrets) || undefined;
  if (ca !== undefined && !ca.includes('-----BEGIN CERTIFICATE-----')) problems.push(`${where}.ca: not a PEM certificate; give \${file:/path/ca.pem}`);
  return { name: channelName, type: 'teams', url, ca, timeoutMs: c.timeout, retry };
}
