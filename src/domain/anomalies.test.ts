import { describe, expect, it } from 'vitest';
import { burstCounter, DEFAULT_DETECTOR_SETTINGS, detect, type DetectedEvent } from './anomalies.js';

const event = (action: string, extra: Partial<DetectedEvent> = {}): DetectedEvent => ({ seq: 1, action, actor: 'alice', subject: 'req_1', data: {}, ...extra });

describe('anomaly detectors', () => {
  it('counts refused sign-ins per account tried, and raises a burst at the threshold', () => {
    const failed = event('auth.login_failed', { actor: 'anonymous', subject: 'bob' });
    expect(burstCounter(failed)).toEqual({ key: 'signin:bob', kind: 'signin' });
    expect(detect(failed, DEFAULT_DETECTOR_SETTINGS, 4)).toBeUndefined();
    expect(detect(failed, DEFAULT_DETECTOR_SETTINGS, 5)).toMatchObject({ kind: 'signin_failure_burst', principalId: 'bob', dedupeKey: 'signin_burst:bob' });
  });

  it('flags break-glass without an incident, standing findings only, real config changes, and new networks', () => {
    expect(detect(event('break_glass.activated'), DEFAULT_DETECTOR_SETTINGS)).toMatchObject({ kind: 'break_glass_outside_incident', severity: 'critical' });
    expect(detect(event('break_glass.activated', { data: { incident: 'INC-7' } }), DEFAULT_DETECTOR_SETTINGS)).toBeUndefined();
    expect(detect(event('finding.opened', { data: { kind: 'standing' } }), DEFAULT_DETECTOR_SETTINGS)).toMatchObject({ kind: 'standing_access' });
    expect(detect(event('finding.opened', { data: { kind: 'missing' } }), DEFAULT_DETECTOR_SETTINGS)).toBeUndefined();
    expect(detect(event('config.reloaded', { data: { version: 'b', previous: 'a' } }), DEFAULT_DETECTOR_SETTINGS)).toMatchObject({ kind: 'config_change' });
    expect(detect(event('config.reloaded', { data: { version: 'a', previous: 'a' } }), DEFAULT_DETECTOR_SETTINGS)).toBeUndefined();
    expect(detect(event('request.approved', { data: { risk: { signals: ['newNetwork'] } } }), DEFAULT_DETECTOR_SETTINGS)).toMatchObject({
      kind: 'new_network_access',
    });
    expect(detect(event('request.approved', { data: { risk: { signals: [] } } }), DEFAULT_DETECTOR_SETTINGS)).toBeUndefined();
  });
});
