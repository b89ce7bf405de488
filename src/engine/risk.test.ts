import { afterEach, beforeEach, expect, it } from 'vitest';
import { describeEachStore } from '../../test/support/stores.js';
import { startEngine, type TestEngine } from '../../test/support/engine.js';
import { isLapseError } from '../domain/errors.js';
import { NOTIFICATION_EVENTS } from '../domain/notifications.js';

const YAML = `
version: 1
roles:
  admins: { groups: [admins] }
  auditors: { users: [auditor] }
targets:
  db:
    connector: noop
    entitlements: { ro: {}, admin: {} }
policies:
  - name: low-risk
    subjects: { groups: [sre] }
    entitlements: ["db/*"]
    duration: { default: 1h, max: 8h }
    autoApproveIf: 'risk.score < 40'
    approval:
      stages: [{ name: leads, approvers: { groups: [leads] }, quorum: 1 }]
breakGlass:
  enabled: true
  subjects: { groups: [sre] }
  entitlements: ["db/*"]
  maxDuration: 1h
  minReasonLength: 5
alerts: { denialBurst: 3, interval: 1h }
notifications:
  channels:
    security: { type: email, from: lapse@example.com, smtp: { host: 127.0.0.1, port: 2525, allowInsecure: true } }
  rules:
    - { events: [alert.raised], channels: [security], to: { addresses: [soc@example.com] } }
`;

const alice = { id: 'alice', kind: 'user' as const, groups: ['sre'] };
const mallory = { id: 'mallory', kind: 'user' as const, groups: ['contractors'] };
const root = { id: 'root', kind: 'user' as const, groups: ['admins'] };
const office = { ip: '192.0.2.10', userAgent: 'lapse-cli/1.0' };

describeEachStore('server-computed risk and anomaly alerts', ({ store }) => {
  let t: TestEngine;
  beforeEach(async () => {
    t = await startEngine(store(), { yaml: YAML });
    // One database per suite: start each test with the detectors caught up and no alerts.
    await t.engine.detectAnomalies();
    await store().db.deleteFrom('alerts').execute();
    await store().db.deleteFrom('alert_counters').execute();
  });
  afterEach(async () => {
    await t.stop();
  });

  const audit = async (action: string) => {
    const rows = await store().db.selectFrom('audit_events').select('payload').orderBy('seq').execute();
    return rows
      .map((r) => JSON.parse(r.payload) as { action: string; actor: string; subject?: string; data?: Record<string, unknown> })
      .filter((e) => e.action === action);
  };
  const ask = (entitlement: string, client: { ip?: string; userAgent?: string } = office) =>
    t.engine.submit({ principal: alice, target: 'db', entitlement, reason: 'look at the queue', client });

  it('scores a new person neutrally, learns them, and lets a policy ask for approval when the score rises', async () => {
    const first = await ask('ro');
    expect(first.request.status).toBe('approved');
    expect((await audit('request.approved'))[0]!.data!.risk).toMatchObject({ score: 30, signals: ['noHistory'] });

    // Known person, known entitlement, same client: nothing unusual.
    expect((await ask('ro')).request.status).toBe('approved');
    expect((await audit('request.approved'))[1]!.data!.risk).toMatchObject({ score: 0, signals: [] });

    // A new entitlement from a new network and a new client: the policy wants a lead.
    const odd = await ask('admin', { ip: '203.0.113.7', userAgent: 'curl/8' });
    expect(odd.request.status).toBe('pending');
    const pending = (await audit('request.pending'))[0]!;
    expect(pending.data!.risk).toMatchObject({ signals: ['newTarget', 'newNetwork', 'newUserAgent'], score: 46 });
    expect(pending.data!.reasons).toContain('matched policy low-risk');
  });

  it('refuses a risk value sent by the client', async () => {
    const before = await store().db.selectFrom('requests').select('id').execute();
    const error = await t.engine
      .submit({ principal: alice, target: 'db', entitlement: 'ro', reason: 'look at the queue', client: { ...office, risk: 0 } } as never)
      .catch((e: unknown) => e);
    expect(isLapseError(error, 'validation_failed')).toBe(true);
    expect(await store().db.selectFrom('requests').select('id').execute()).toEqual(before);
  });

  it('does not learn from denied requests', async () => {
    await expect(t.engine.submit({ principal: mallory, target: 'db', entitlement: 'ro', reason: 'just looking', client: office })).resolves.toMatchObject({
      request: { status: 'denied' },
    });
    expect(await store().db.selectFrom('risk_people').select('principal_id').where('principal_id', '=', 'mallory').execute()).toEqual([]);
  });

  it('raises alerts from the audit chain: a denial burst, break-glass with no incident; stored once, sent to the security channel', async () => {
    expect(NOTIFICATION_EVENTS).toContain('alert.raised');
    // The detector runs on its own as a durable job, booked at start.
    expect(await store().db.selectFrom('jobs').select('subject_id').where('kind', '=', 'detect').execute()).toEqual([{ subject_id: 'audit' }]);
    for (let i = 0; i < 4; i++) await t.engine.submit({ principal: mallory, target: 'db', entitlement: 'ro', reason: 'just looking', client: office });
    await t.engine.breakGlass({ principal: alice, target: 'db', entitlement: 'admin', reason: 'primary is down', durationMs: 600_000, client: office });
    expect(await t.engine.detectAnomalies()).toBe(2);
    // The cursor moved: a second run raises nothing again.
    expect(await t.engine.detectAnomalies()).toBe(0);
    const alerts = await t.engine.listAlerts({ limit: 10 });
    expect(alerts.map((a) => [a.kind, a.principalId, a.status]).sort()).toEqual([
      ['break_glass_outside_incident', 'alice', 'open'],
      ['denial_burst', 'mallory', 'open'],
    ]);
    const ids = alerts.map((a) => a.id);
    const burst = alerts.find((a) => a.kind === 'denial_burst')!;
    expect(burst.occurrences).toBe(2);
    expect(
      (await audit('alert.raised'))
        .filter((e) => ids.includes(e.subject!))
        .map((e) => e.data!.kind)
        .sort(),
    ).toEqual(['break_glass_outside_incident', 'denial_burst']);
    const deliveries = await store()
      .db.selectFrom('notification_deliveries')
      .select(['event', 'channel', 'recipient'])
      .where('subject_id', 'in', ids)
      .execute();
    expect(deliveries.filter((d) => d.event === 'alert.raised')).toEqual([
      { event: 'alert.raised', channel: 'security', recipient: 'address:soc@example.com' },
      { event: 'alert.raised', channel: 'security', recipient: 'address:soc@example.com' },
    ]);
  });

  it('lets admins acknowledge and resolve an alert, and refuses others and bad transitions without a change', async () => {
    await t.engine.breakGlass({ principal: alice, target: 'db', entitlement: 'admin', reason: 'primary is down', durationMs: 600_000, client: office });
    await t.engine.detectAnomalies();
    const [alert] = await t.engine.listAlerts({ limit: 10, status: 'open' });
    const refused = await t.engine.changeAlert({ alertId: alert!.id, by: alice, action: 'resolve' }).catch((e: unknown) => e);
    expect(isLapseError(refused, 'forbidden')).toBe(true);
    const bad = await t.engine.changeAlert({ alertId: alert!.id, by: root, action: 'close' as never }).catch((e: unknown) => e);
    expect(isLapseError(bad, 'validation_failed')).toBe(true);
    const missing = await t.engine.changeAlert({ alertId: 'alr_nope', by: root, action: 'resolve' }).catch((e: unknown) => e);
    expect(isLapseError(missing, 'not_found')).toBe(true);
    expect((await t.engine.listAlerts({ limit: 10 }))[0]!.status).toBe('open');

    expect(await t.engine.changeAlert({ alertId: alert!.id, by: root, action: 'acknowledge', note: 'on it' })).toMatchObject({
      status: 'acknowledged',
      acknowledgedBy: 'root',
      note: 'on it',
    });
    expect(await t.engine.changeAlert({ alertId: alert!.id, by: root, action: 'resolve' })).toMatchObject({ status: 'resolved', resolvedBy: 'root' });
    const again = await t.engine.changeAlert({ alertId: alert!.id, by: root, action: 'acknowledge' }).catch((e: unknown) => e);
    expect(isLapseError(again, 'invalid_transition')).toBe(true);
    expect((await audit('alert.resolved')).map((e) => e.actor)).toEqual(['root']);
  });
});
