import { afterAll, beforeAll, expect, it } from 'vitest';
import { startTestApi, type TestApi } from '../../../test/support/api.js';
import { waitFor } from '../../../test/support/engine.js';
import { describeEachStore } from '../../../test/support/stores.js';

/** The value of one sample in Prometheus text, or undefined when no line matches exactly. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const found = Object.fromEntries([...(match[2] ?? '').matchAll(/([a-zA-Z_]+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1], m[2]]));
    if (Object.entries(labels).every(([key, value]) => found[key] === value)) return Number(match[3]);
  }
  return undefined;
}

/**
 * GET /metrics after a real cycle through the API: a request auto-approved, provisioned, expired
 * and revoked; one pending and denied by people; a provision that fails; a break-glass use.
 */
describeEachStore('Prometheus metrics', ({ store }) => {
  let api: TestApi;
  let text = '';
  beforeAll(async () => {
    api = await startTestApi(store());
    api.t.noop.behaviour('flaky').failProvision = true;
    const ask = async (payload: Record<string, string>) => {
      const response = await api.call('alice', { method: 'POST', url: '/api/v1/requests', payload });
      expect(response.statusCode, response.body).toBe(201);
      return response.json<{ request: { id: string } }>().request.id;
    };
    const grantOf = (id: string, status: string) =>
      waitFor(
        async () => (await api.call('root', { method: 'GET', url: `/api/v1/requests/${id}` })).json<{ grant: { status: string } | null }>().grant,
        (g) => g?.status === status,
        15_000,
      );

    const expiring = await ask({ target: 'prod-db', entitlement: 'readonly', duration: '1s', reason: 'metrics: expires at once' });
    await grantOf(expiring, 'revoked');
    const pending = await ask({ target: 'prod-db', entitlement: 'admin', duration: '1h', reason: 'metrics: needs approval', ticket: 'OPS-1' });
    expect((await api.call('bob', { method: 'POST', url: `/api/v1/requests/${pending}/reviews`, payload: { decision: 'deny' } })).statusCode).toBe(200);
    const failing = await ask({ target: 'flaky', entitlement: 'readonly', duration: '1h', reason: 'metrics: the target refuses' });
    await grantOf(failing, 'failed');
    const glass = await api.call('alice', {
      method: 'POST',
      url: '/api/v1/break-glass',
      payload: { target: 'prod-db', entitlement: 'admin', duration: '10m', reason: 'metrics: the primary is down, INC-9' },
    });
    expect(glass.statusCode, glass.body).toBe(201);
    await grantOf(glass.json<{ request: { id: string } }>().request.id, 'active');
    expect((await api.call(null, { method: 'GET', url: '/api/v1/nothing-here' })).statusCode).toBe(404);
    expect((await api.call(null, { method: 'GET', url: '/healthz' })).statusCode).toBe(200);

    const response = await api.call(null, { method: 'GET', url: '/metrics' });
    expect(response.statusCode).toBe(200);
    text = response.body;
  }, 60_000);
  afterAll(async () => {
    await api?.stop();
  });

  it('names process metrics once: lapse_process_…, never lapse_process_process_…', () => {
    expect(sample(text, 'lapse_process_cpu_seconds_total')).toBeGreaterThan(0);
    expect(sample(text, 'lapse_nodejs_eventloop_lag_seconds')).toBeGreaterThanOrEqual(0);
    expect(text).not.toMatch(/process_process|lapse_process_nodejs/);
  });

  it('counts HTTP requests and their latency by method, route pattern and status', () => {
    expect(sample(text, 'lapse_http_requests_total', { method: 'POST', route: '/api/v1/requests', status: '201' })).toBe(3);
    expect(sample(text, 'lapse_http_requests_total', { method: 'POST', route: '/api/v1/requests/:id/reviews', status: '200' })).toBe(1);
    expect(sample(text, 'lapse_http_requests_total', { method: 'GET', route: 'unmatched', status: '404' })).toBe(1);
    expect(sample(text, 'lapse_http_requests_total', { method: 'GET', route: '/healthz', status: '200' })).toBe(1);
    expect(sample(text, 'lapse_http_request_duration_seconds_count', { method: 'POST', route: '/api/v1/break-glass', status: '201' })).toBe(1);
    expect(sample(text, 'lapse_http_request_duration_seconds_bucket', { method: 'POST', route: '/api/v1/break-glass', status: '201', le: '+Inf' })).toBe(1);
    // Route patterns, not URLs: no request id ever becomes a label value.
    expect(text).not.toMatch(/route="[^"]*req_/);
  });

  it('gives grants by state and requests by outcome', () => {
    expect(sample(text, 'lapse_grants', { state: 'active' })).toBe(1);
    expect(sample(text, 'lapse_grants', { state: 'provisioning' })).toBe(0);
    expect(sample(text, 'lapse_grants', { state: 'revoking' })).toBe(0);
    expect(sample(text, 'lapse_grants_ended_total', { status: 'revoked', reason: 'expired' })).toBe(1);
    expect(sample(text, 'lapse_grants_ended_total', { status: 'failed', reason: 'provision_failed' })).toBe(1);
    expect(sample(text, 'lapse_requests_total', { outcome: 'auto_approved' })).toBe(2);
    expect(sample(text, 'lapse_requests_total', { outcome: 'pending' })).toBe(1);
    expect(sample(text, 'lapse_requests_total', { outcome: 'denied' })).toBe(1);
    expect(sample(text, 'lapse_requests_pending')).toBe(0);
  });

  it('measures revocation lag (expiry to revoked) and connector calls by target, with errors', () => {
    const lag = sample(text, 'lapse_revocation_lag_seconds_count');
    expect(lag).toBe(1);
    expect(sample(text, 'lapse_revocation_lag_seconds_sum')).toBeLessThan(5);
    expect(sample(text, 'lapse_connector_call_duration_seconds_count', { target: 'prod-db', connector: 'noop', operation: 'provision', outcome: 'ok' })).toBe(
      2,
    );
    expect(sample(text, 'lapse_connector_call_duration_seconds_count', { target: 'prod-db', connector: 'noop', operation: 'revoke', outcome: 'ok' })).toBe(1);
    expect(sample(text, 'lapse_connector_call_errors_total', { target: 'flaky', connector: 'noop', operation: 'provision' })).toBe(3);
  });

  it('counts break-glass uses, audit appends and checkpoints, and scheduler lag', () => {
    expect(sample(text, 'lapse_break_glass_total', { outcome: 'activated' })).toBe(1);
    expect(sample(text, 'lapse_audit_events_total')).toBeGreaterThan(10);
    expect(sample(text, 'lapse_audit_unsigned_events')).toBe(sample(text, 'lapse_audit_events_total'));
    expect(text).toContain('# TYPE lapse_audit_last_checkpoint_age_seconds gauge');
    expect(sample(text, 'lapse_scheduler_lag_seconds_count', { kind: 'provision' })).toBeGreaterThanOrEqual(3);
    expect(sample(text, 'lapse_scheduler_lag_seconds_count', { kind: 'expire' })).toBe(1);
    // The families that were there before keep their names.
    for (const family of ['lapse_revocations_overdue', 'lapse_jobs', 'lapse_findings_open', 'lapse_scheduler_last_round_age_seconds'])
      expect(text).toContain(`# TYPE ${family} gauge`);
  });
});
