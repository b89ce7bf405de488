import { randomBytes } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { postJson, retryAfterMs } from './https-post.js';

/**
 * Outbound event webhooks, signed per the Standard Webhooks spec (https://www.standardwebhooks.com)
 * with the `standardwebhooks` package, so receivers verify with a stock library:
 * `webhook-id` (the delivery id, the same on every attempt and replay), `webhook-timestamp` (Unix
 * seconds of this attempt) and `webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">`.
 */

/** A new signing secret: `whsec_` + 32 random bytes in base64, the form stock verifiers take. */
export function newWebhookSecret(): string {
  return `whsec_${randomBytes(32).toString('base64')}`;
}

/** The body of an event: the Standard Webhooks shape (type, timestamp, data). */
export function eventWebhookBody(event: { type: string; timestamp: Date; data: Readonly<Record<string, unknown>> }): string {
  return JSON.stringify({ type: event.type, timestamp: event.timestamp.toISOString(), data: event.data });
}

export interface WebhookAttempt {
  /** 2xx: received. */
  readonly ok: boolean;
  readonly status: number;
  /** From a 429's (or 503's) Retry-After. */
  readonly retryAfterMs: number | undefined;
  /** What the receiver answered when it was not 2xx (bounded). */
  readonly answer: string;
}

/** Signs `body` for this attempt and POSTs it; network errors and timeouts reject. */
export async function sendEventWebhook(
  to: { url: string; secret: string; ca?: string | undefined },
  message: { id: string; body: string; now?: Date },
  signal: AbortSignal,
): Promise<WebhookAttempt> {
  const timestamp = message.now ?? new Date();
  const headers = {
    'webhook-id': message.id,
    'webhook-timestamp': String(Math.floor(timestamp.getTime() / 1000)),
    'webhook-signature': new Webhook(to.secret).sign(message.id, timestamp, message.body),
  };
  const answer = await postJson(new URL(to.url), message.body, { headers, ca: to.ca, signal });
  const ok = answer.status >= 200 && answer.status < 300;
  return {
    ok,
    status: answer.status,
    retryAfterMs: answer.status === 429 || answer.status === 503 ? retryAfterMs(answer.headers['retry-after']) : undefined,
    answer: ok ? '' : answer.body.slice(0, 300),
  };
}
