import { z } from 'zod';
import type { NotificationEventName } from './notifications.js';
import { boundedText } from './text.js';

/**
 * Outbound event webhooks (docs/notifications.md): which events a subscription may receive, and
 * the inputs that create and replay them, checked the same way by the API and the CLI.
 */

/**
 * Events as they happen. The reminders, escalations and "ends soon" of notifications are timers
 * that run only where a rule asks for them, so they are not lifecycle events a receiver can count on.
 */
export const WEBHOOK_EVENTS = [
  'request.pending',
  'request.decided',
  'extension.pending',
  'grant.active',
  'grant.ended',
  'break_glass.used',
  'grant.revoke_failing',
  'finding.opened',
  'config.rejected',
] as const satisfies readonly NotificationEventName[];

export type WebhookEventName = (typeof WEBHOOK_EVENTS)[number];

const MAX_URL = 2048;

const webhookId = z
  .string()
  .max(64)
  .regex(/^whd_[0-9a-z]{26}$/, 'is not a webhook delivery id (whd_…)');

/** A new subscription: where to send, which events (none listed: all), and the http opt-in. */
export const webhookSubscriptionInput = z
  .object({
    url: z.string().min(1).max(MAX_URL),
    events: z.array(z.enum(WEBHOOK_EVENTS)).max(WEBHOOK_EVENTS.length).default([]),
    description: boundedText(200).default(''),
    /** Plain http: requests (and their signatures) can be read and changed on the way. Loud opt-in. */
    allowInsecureHttp: z.boolean().default(false),
  })
  .strict()
  .superRefine((input, ctx) => {
    const problem = webhookUrlProblem(input.url, input.allowInsecureHttp);
    if (problem) ctx.addIssue({ code: 'custom', path: ['url'], message: problem });
  });

export type WebhookSubscriptionInput = z.input<typeof webhookSubscriptionInput>;

/** Why a subscription URL is refused, or undefined when it is acceptable. */
export function webhookUrlProblem(url: string, allowInsecureHttp: boolean): string | undefined {
  if (!URL.canParse(url)) return 'is not a URL; write e.g. https://hooks.example.com/lapse';
  const parsed = new URL(url);
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') return 'must start with https://';
  if (parsed.username || parsed.password) return 'must not carry credentials (user:password@); the signature authenticates Lapse to the receiver';
  if (parsed.hash) return 'must not have a #fragment';
  if (parsed.protocol === 'http:' && !allowInsecureHttp) {
    return 'plain http sends events unencrypted; use https, or set allowInsecureHttp: true if the network is trusted (e.g. a receiver on this machine)';
  }
  return undefined;
}

/** A replay: one delivery, or a range of a subscription's deliveries by id (inclusive). */
export const webhookReplayInput = z.union([
  z.object({ delivery: webhookId }).strict(),
  z
    .object({ from: webhookId, to: webhookId })
    .strict()
    .refine((range) => range.from <= range.to, { message: 'from must not come after to (ids sort by time)', path: ['to'] }),
]);

export type WebhookReplayInput = z.input<typeof webhookReplayInput>;

/** The most deliveries one replay re-sends. */
export const MAX_REPLAY = 1000;
