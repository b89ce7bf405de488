import { describe, expect, it } from 'vitest';
import { eventFromAudit, formatTimeOfDay, parseTimeOfDay, quietHoursEnd } from './notifications.js';

describe('notification events from audit records', () => {
  it('maps lifecycle actions to events, and leaves the rest alone', () => {
    expect(eventFromAudit({ action: 'request.pending', actor: 'alice', subject: 'req_1', data: {} })?.name).toBe('request.pending');
    expect(eventFromAudit({ action: 'review.approve', actor: 'bob', subject: 'req_1', data: { effect: 'advanced' } })?.name).toBe('request.pending');
    expect(eventFromAudit({ action: 'review.approve', actor: 'bob', subject: 'req_1', data: { effect: 'recorded' } })).toBeUndefined();
    expect(eventFromAudit({ action: 'request.approved', actor: 'bob', subject: 'req_1', data: { by: 'review' } })).toMatchObject({
      name: 'request.decided',
      data: { outcome: 'approved' },
    });
    // Auto-approved or denied by policy at submit: the requester saw that in the answer.
    expect(eventFromAudit({ action: 'request.approved', actor: 'alice', subject: 'req_1', data: {} })).toBeUndefined();
    expect(eventFromAudit({ action: 'request.denied', actor: 'alice', subject: 'req_1', data: { denial: 'not_eligible' } })).toBeUndefined();
    expect(eventFromAudit({ action: 'request.timed_out', actor: 'system', subject: 'req_1' })?.data).toEqual({ outcome: 'timed_out' });
    expect(eventFromAudit({ action: 'grant.revoked', actor: 'root', subject: 'grt_1', data: { reason: 'x' } })).toBeUndefined();
    expect(eventFromAudit({ action: 'grant.revoked', actor: 'system', subject: 'grt_1', data: { targetCall: true } })?.name).toBe('grant.ended');
    expect(eventFromAudit({ action: 'break_glass.activated', actor: 'alice', subject: 'req_2' })?.name).toBe('break_glass.used');
    expect(eventFromAudit({ action: 'grant.revoke_failed', actor: 'system', subject: 'grt_1' })?.name).toBe('grant.revoke_failing');
    expect(eventFromAudit({ action: 'auth.login', actor: 'alice' })).toBeUndefined();
  });
});

describe('quiet hours', () => {
  const at = (iso: string) => new Date(iso);
  it('holds until the end of quiet hours that span midnight, in the person’s time zone', () => {
    const quiet = { start: 22 * 60, end: 7 * 60, timezone: 'Europe/Berlin' };
    // 23:30 in Berlin (UTC+1 in January): held until 07:00 Berlin = 06:00 UTC.
    expect(quietHoursEnd(quiet, at('2026-01-10T22:30:00Z'))?.toISOString()).toBe('2026-01-11T06:00:00.000Z');
    expect(quietHoursEnd(quiet, at('2026-01-11T05:59:30Z'))?.toISOString()).toBe('2026-01-11T06:00:00.000Z');
    expect(quietHoursEnd(quiet, at('2026-01-11T06:00:00Z'))).toBeNull();
    expect(quietHoursEnd(quiet, at('2026-01-10T12:00:00Z'))).toBeNull();
  });
  it('handles quiet hours within one day and none at all', () => {
    expect(quietHoursEnd({ start: 12 * 60, end: 13 * 60, timezone: 'UTC' }, at('2026-01-10T12:15:00Z'))?.toISOString()).toBe('2026-01-10T13:00:00.000Z');
    expect(quietHoursEnd({ start: 600, end: 600, timezone: 'UTC' }, at('2026-01-10T10:00:00Z'))).toBeNull();
  });
  it('reads and writes times of day strictly', () => {
    expect(parseTimeOfDay('22:00')).toBe(1320);
    expect(parseTimeOfDay('7:00')).toBeUndefined();
    expect(parseTimeOfDay('24:00')).toBeUndefined();
    expect(formatTimeOfDay(425)).toBe('07:05');
  });
});
