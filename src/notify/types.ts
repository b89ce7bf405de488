import type { NotificationEventName } from '../domain/notifications.js';

/** One message to one recipient over one channel, as the worker hands it to the channel. */
export interface OutgoingNotification {
  /** The delivery's id: the same on every attempt, so receivers can drop repeats (email Message-ID). */
  readonly id: string;
  readonly event: NotificationEventName;
  readonly urgent: boolean;
  /** What happened: ids, names, times, reasons. Never credentials. */
  readonly payload: Readonly<Record<string, unknown>>;
  /** A person (their name, and the address the channel needs if known) or an address from the rule. */
  readonly recipient: { readonly user?: string | undefined; readonly address?: string | undefined };
  /** The portal's base URL (auth.publicUrl), or undefined when it is not configured. */
  readonly portalUrl: string | undefined;
}

/**
 * A notification channel (email today; Slack, Teams and webhooks next): it renders the event its
 * own way and hands it over. Called by the `notify` job outside any transaction, with a deadline.
 */
export interface NotificationChannel {
  readonly name: string;
  readonly type: string;
  /** Hands the message over. Throws UndeliverableError when retrying cannot help. */
  send(message: OutgoingNotification, signal: AbortSignal): Promise<void>;
  /**
   * How many sends the worker runs at once on this channel (optional; 8 when absent): email has
   * one per pooled SMTP connection, so a send's deadline starts when a connection is free for it.
   */
  readonly parallelSends?: number;
  /** Closes connections (pooled SMTP sessions). */
  close(): Promise<void>;
}

/**
 * A message that no retry will deliver: `skipped` when there is nowhere to send it (no address on
 * record), `failed` when the other side refused it (an unknown mailbox).
 */
export class UndeliverableError extends Error {
  override readonly name = 'UndeliverableError';

  constructor(
    message: string,
    readonly outcome: 'failed' | 'skipped' = 'failed',
  ) {
    super(message);
  }
}

/**
 * The other side asked to be called again later (HTTP 429 with Retry-After): the worker waits at
 * least `retryAfterMs` before the next attempt, however short its own backoff.
 */
export class RetryLaterError extends Error {
  override readonly name = 'RetryLaterError';

  constructor(
    message: string,
    readonly retryAfterMs: number,
  ) {
    super(message);
  }
}
