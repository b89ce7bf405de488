import { afterAll, afterEach, beforeAll, beforeEach, expect, it } from 'vitest';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { parseConfig } from '../config/index.js';
import { connectorRegistry, NoopConnector } from '../connectors/index.js';
import { isLapseError } from '../domain/errors.js';
import { JiraFake, PagerDutyFake } from '../integrations/testing/index.js';
import { describeEachStore } from '../../test/support/stores.js';
import { bob, waitFor } from '../../test/support/engine.js';
import { getGrant } from '../store/index.js';
import { Engine } from './engine.js';

const PD_TOKEN = 'pd-engine-test-token-123';
const JIRA_TOKEN = 'jira-engine-test-token-456';
const HOUR = 3_600_000;
const alice = { id: 'alice', kind: 'user' as const, groups: ['sre'] };

const pd = new PagerDutyFake(PD_TOKEN);
const jira = new JiraFake('lapse@example.com', JIRA_TOKEN);
beforeAll(async () => {
  await pd.start();
  await jira.start();
  pd.users.push({ id: 'PALICE1', email: 'alice@example.com', name: 'Alice' });
  jira.issues.set('OPS-1', { summary: 'checkout slow', status: 'In Progress', category: 'indeterminate' });
  jira.issues.set('OPS-2', { summary: 'fixed last week', status: 'Done', category: 'done' });
});
afterAll(async () => {
  await pd.stop();
  await jira.stop();
});

const yaml = () => `
version: 1
targets:
  shop-db:
    connector: noop
    labels: { service: checkout }
    entitlements: { readonly: {}, admin: {} }
  ledger-db:
    connector: noop
    labels: { service: ledger }
    entitlements: { readonly: {} }
  plain-db:
    connector: noop
    entitlements: { readonly: {} }
integrations:
  people: { emailDomain: example.com }
  pagerduty:
    apiUrl: ${pd.url}
    token: \${env:PD_TOKEN}
    timeout: 1500ms
    cacheTtl: 60s
    services:
      checkout: { escalationPolicies: [PEPCHK] }
      ledger: { escalationPolicies: [PEPLED] }
  jira:
    url: ${jira.url}
    email: lapse@example.com
    apiToken: \${env:JIRA_TOKEN}
    timeout: 1500ms
    cacheTtl: 0s
policies:
  - name: plain
    subjects: { groups: [sre] }
    entitlements: ["plain-db/readonly"]
    autoApprove: true
  - name: oncall-readonly
    subjects: { groups: [sre] }
    entitlements: ["*/readonly"]
    autoApproveIf: oncall.forTarget
    approval: { stages: [{ name: leads, approvers: { groups: [sre-leads] } }] }
  - name: admin-with-ticket
    subjects: { groups: [sre] }
    entitlements: ["shop-db/admin"]
    require: { ticket: { pattern: "^OPS-[0-9]+$", verify: jira } }
    approval: { stages: [{ name: leads, approvers: { groups: [sre-leads] } }] }
scheduler: { pollInterval: 200ms, connectorTimeout: 2s }
`;

describeEachStore('policy inputs through the engine', ({ store }) => {
  let engine: Engine;
  let now = 0;
  const warnings: string[] = [];
  beforeEach(async () => {
    now = 0;
    warnings.length = 0;
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        warnings.push(chunk.toString('utf8'));
        done();
      },
    });
    engine = new Engine({
      store: store(),
      config: parseConfig(yaml(), 'inputs.yaml', { PD_TOKEN, JIRA_TOKEN }),
      connectors: connectorRegistry([new NoopConnector()]),
      logger: pino({ level: 'warn' }, sink),
      inputsClock: () => now,
    });
    await engine.start();
    pd.oncalls.length = 0;
    pd.delayMs = 0;
    pd.failWith = undefined;
    jira.failWith = undefined;
  });
  afterEach(async () => {
    await engine.stop();
  });

  const onCall = (policy: string) =>
    pd.oncalls.push({ user: 'PALICE1', escalationPolicy: policy, start: new Date(Date.now() - HOUR), end: new Date(Date.now() + HOUR) });
  const auditOf = async (subject: string) => {
    const rows = await store().db.selectFrom('audit_events').select('payload').orderBy('seq').execute();
    return rows.map((r) => JSON.parse(r.payload) as { action: string; subject?: string; data?: Record<string, unknown> }).filter((e) => e.subject === subject);
  };
  const submitReadonly = (target: string) => engine.submit({ principal: alice, target, entitlement: 'readonly', reason: 'checkout queue backs up' });

  it('auto-approves an on-call engineer for their service; off call, or for another service, the request waits for approval', async () => {
    onCall('PEPCHK');
    const { request } = await submitReadonly('shop-db');
    expect(request.status).toBe('approved');
    await waitFor(
      () => getGrant(store().db, request.grantId!),
      (g) => g?.status === 'active',
    );
    const [decided] = await auditOf(request.id);
    expect(decided!.data).toMatchObject({ inputs: { oncall: { source: 'pagerduty', checked: true, active: true, services: ['checkout'] } } });
    expect(decided!.data!.reasons).toContain('on-call (pagerduty): on call for checkout');

    expect((await submitReadonly('ledger-db')).request.status).toBe('pending');

    pd.oncalls.length = 0;
    now += 61_000;
    const off = await submitReadonly('shop-db');
    expect(off.request.status).toBe('pending');
    expect(off.request.stages.map((s) => s.name)).toEqual(['leads']);
    const approved = await engine.review({ requestId: off.request.id, reviewer: bob, decision: 'approve' });
    expect(approved.effect).toBe('approved');
  });

  it('asks PagerDuty once per principal within the cache TTL, and again after it', async () => {
    onCall('PEPCHK');
    const calls = () => pd.callsTo('/oncalls').length;
    const before = calls();
    await submitReadonly('shop-db');
    now += 30_000;
    await submitReadonly('ledger-db');
    expect(calls() - before).toBe(1);
    now += 31_000;
    await submitReadonly('shop-db');
    expect(calls() - before).toBe(2);
  });

  it('looks nothing up for a request no candidate policy reads facts for', async () => {
    const before = pd.calls.length;
    expect((await submitReadonly('plain-db')).request.status).toBe('approved');
    expect(pd.calls.length).toBe(before);
  });

  it('treats PagerDuty down or slow as "not on call": the request still goes to approval within the deadline, with a warning', async () => {
    onCall('PEPCHK');
    // NB. Timeouts of 1.5 s (not the 3 s default) so a loaded machine still answers the happy paths in time.
    pd.delayMs = 6_000;
    const started = performance.now();
    const slow = await submitReadonly('shop-db');
    expect(performance.now() - started).toBeLessThan(4_500);
    expect(slow.request.status).toBe('pending');
    const [decided] = await auditOf(slow.request.id);
    expect(decided!.data).toMatchObject({ inputs: { oncall: { checked: false, active: false, error: expect.stringMatching(/no answer within 1500 ms/) } } });

    pd.delayMs = 0;
    pd.failWith = 503;
    const failing = await submitReadonly('shop-db');
    expect(failing.request.status).toBe('pending');
    expect(warnings.join('')).toMatch(/on-call lookup failed; treating as not on call/);
    expect(warnings.join('')).toMatch(/answered HTTP 503/);
    expect(warnings.join('')).not.toContain(PD_TOKEN);
  });

  it('refuses a closed or unknown ticket with a clear reason, and says retry when Jira cannot be asked', async () => {
    const admin = (ticket: string) => engine.submit({ principal: alice, target: 'shop-db', entitlement: 'admin', reason: 'fix the index', ticket });
    expect((await admin('OPS-1')).request.status).toBe('pending');

    const closed = await admin('OPS-2').catch((e: unknown) => e);
    expect(isLapseError(closed, 'validation_failed')).toBe(true);
    expect((closed as Error).message).toBe('ticket OPS-2 is "Done" in Jira; policy admin-with-ticket needs an open ticket');

    const unknown = await admin('OPS-404').catch((e: unknown) => e);
    expect(isLapseError(unknown, 'validation_failed') && unknown.message).toMatch(/ticket OPS-404 does not exist in Jira/);

    jira.failWith = 502;
    const down = await admin('OPS-1').catch((e: unknown) => e);
    expect(isLapseError(down, 'ticket_system_unavailable')).toBe(true);
    expect((down as Error).message).toMatch(/Jira could not be asked: .*answered HTTP 502/);
    expect((down as Error).message).not.toContain(JIRA_TOKEN);

    const rows = await store().db.selectFrom('audit_events').select('payload').orderBy('seq').execute();
    const rejected = rows.map((r) => JSON.parse(r.payload) as { action: string; data: Record<string, unknown> }).filter((e) => e.action === 'request.rejected');
    expect(rejected.map((e) => e.data.code)).toEqual(['validation_failed', 'validation_failed', 'ticket_system_unavailable']);
    expect(rejected[0]!.data).toMatchObject({ inputs: { tickets: [{ system: 'jira', key: 'OPS-2', exists: true, open: false, status: 'Done' }] } });
  });
});
