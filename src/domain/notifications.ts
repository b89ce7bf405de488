import { z } from 'zod';
import { isKnownTimezone, localTime } from './policy/context.js';

/**
 * What people are told of (docs/notifications.md), as pure rules: which audit actions are
 * notification events, which events are urgent, and when quiet hours end. The engine applies them
 * where audit records are appended, so a use-case cannot forget to notify.
 */
export const NOTIFICATION_EVENTS = [
  'request.pending',
  'request.reminder',
  'request.escalated',
  'request.decided',
  'extension.pending',
  'grant.active',
  'grant.ending_soon',
  'grant.ended',
  'break_glass.used',
  'grant.revoke_failing',
  'finding.opened',
  'config.rejected',
  'review.opened',
  'review.reminder',
  'alert.raised',
] as const;

export type NotificationEventName = (typeof NOTIFICATION_EVENTS)[number];

/** Never held back by quiet hours: someone must act now. */
export const URGENT_EVENTS: ReadonlySet<NotificationEventName> = new Set(['break_glass.used', 'grant.revoke_failing', 'alert.raised']);

/** One thing that happened, as notifications see it: its name, what it is about, who did it. */
export interface NotificationEvent {
  readonly name: NotificationEventName;
  /** The request, grant or finding it is about (null for config events). */
  readonly subject: string | null;
  readonly actor: string;
  /** From the audit record: ids, names, reasons; never credentials. */
  readonly data: Readonly<Record<string, unknown>>;
}

/** The audit record's shape, as far as the mapping needs it. */
export interface AuditedAction {
  readonly action: string;
  readonly actor: string;
  readonly subject?: string | undefined;
  readonly data?: Record<string, unknown> | undefined;
}

/**
 * The notification event an audit record stands for, if any. Decisions the requester made or saw
 * themselves (a policy denial at submit, an auto-approval) tell them nothing new; a decision by
 * review or time-out does.
 */
export function eventFromAudit(entry: AuditedAction): NotificationEvent | undefined {
  const data = entry.data ?? {};
  const subject = entry.subject ?? null;
  const event = (name: NotificationEventName, extra: Record<string, unknown> = {}): NotificationEvent => ({
    name,
    subject,
    actor: entry.actor,
    data: { ...data, ...extra },
  });
  switch (entry.action) {
    case 'request.pending':
      return event('request.pending');
    case 'review.approve':
      // A stage passed and the next one opens: its approvers are asked now.
      return data.effect === 'advanced' ? event('request.pending') : undefined;
    case 'request.approved':
    case 'request.denied':
      return data.by === 'review' ? event('request.decided', { outcome: entry.action.slice('request.'.length) }) : undefined;
    case 'request.timed_out':
      return event('request.decided', { outcome: 'timed_out' });
    case 'extension.pending':
      return event('extension.pending');
    case 'grant.activated':
      return event('grant.active');
    case 'grant.revoked':
      // The completion (its target call done or not needed), not the start of the revoke.
      return 'targetCall' in data ? event('grant.ended') : undefined;
    case 'break_glass.activated':
      return event('break_glass.used');
    case 'grant.revoke_failed':
      return event('grant.revoke_failing');
    case 'finding.opened':
      return event('finding.opened');
    case 'config.rejected':
      return event('config.rejected');
    case 'review.opened':
      return event('review.opened');
    case 'review.reminder':
      return event('review.reminder');
    case 'alert.raised':
      return event('alert.raised');
    default:
      return undefined;
  }
}

/** Quiet hours: minutes after midnight in a time zone; `start` after `end` spans midnight. */
export interface QuietHours {
  readonly start: number;
  readonly end: number;
  readonly timezone: string;
}

/**
 * When quiet hours that hold `now` end, or null when `now` is outside them. Counted in wall-clock
 * minutes, so across a daylight-saving change the hold may be an hour off; it is never dropped.
 */
export function quietHoursEnd(quiet: QuietHours, now: Date): Date | null {
  const local = localTime(now, quiet.timezone);
  const minute = Number(local.hour) * 60 + Number(local.minute);
  const { start, end } = quiet;
  if (start === end) return null;
  const inside = start < end ? minute >= start && minute < end : minute >= start || minute < end;
  if (!inside) return null;
  const wait = (end - minute + 1440) % 1440;
  const atMinute = new Date(now.getTime() - now.getUTCSeconds() * 1000 - now.getUTCMilliseconds());
  return new Date(atMinute.getTime() + wait * 60_000);
}

/** "22:00" as minutes after midnight, or undefined when it is not a time of day. */
export function parseTimeOfDay(text: string): number | undefined {
  const match = /^([01][0-9]|2[0-3]):([0-5][0-9])$/.exec(text);
  return match ? Number(match[1]) * 60 + Number(match[2]) : undefined;
}

export function formatTimeOfDay(minutes: number): string {
  return `${String(Math.floor(minutes / 60)).padStart(2, '0')}:${String(minutes % 60).padStart(2, '0')}`;
}

const timeOfDay = z
  .string()
  .max(5)
  .refine((text) => parseTimeOfDay(text) !== undefined, 'write a time of day as HH:MM, e.g. 22:00');

/** A person's notification preferences as the API and CLI send them (bounded, every field checked). */
export const preferencesInput = z
  .object({
    email: z.boolean(),
    quietHours: z.object({ start: timeOfDay, end: timeOfDay }).strict().nullable(),
    timezone: z
      .string()
      .min(1)
      .max(64)
      .refine((tz) => isKnownTimezone(tz), 'not an IANA time zone (e.g. UTC, Europe/Berlin)'),
  })
  .strict()
  .refine((p) => p.quietHours === null || p.quietHours.start !== p.quietHours.end, {
    message: 'quiet hours need different start and end times (or null for none)',
    path: ['quietHours'],
  });

export type PreferencesInput = z.input<typeof preferencesInput>;
