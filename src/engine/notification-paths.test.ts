import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { parseConfig } from '../config/index.js';
import { connectorRegistry, NoopConnector } from '../connectors/index.js';
import { newId } from '../domain/ids.js';
import { getGrant, insertUser, listDeliveries, setUserEmail, type Delivery, type Store } from '../store/index.js';
import { alice, bob, carol, waitFor } from '../../test/support/engine.js';
import { describeEachStore } from '../../test/support/stores.js';
import { notificationsYaml, startSmtpServer, type Received, type TestSmtpServer } from '../../test/support/smtp.js';
import { Engine } from './engine.js';

/**
 * The notification paths beyond the first email (docs/notifications.md): approver reminders and
 * escalation after short configured durations, extension approvals, quiet hours through the
 * worker (held, urgent events not), and the security events routed to the security group.
 */
const CONFIG = `
version: 1
roles:
  admins: { groups: [admins] }
targets:
  prod-db:
    connector: noop
    entitlements: { readonly: {}, admin: {} }
  flaky:
    connector: noop
    entitlements: { readonly: {} }
policies:
  - name: sre-readonly
    subjects: { groups: [sre] }
    entitlements: ["prod-db/readonly", "flaky/readonly"]
    duration: { default: 1h, max: 8h }
    autoApprove: true
  - name: sre-admin
    subjects: { groups: [sre] }
    entitlements: ["prod-db/admin"]
    duration: { default: 1h, max: 4h }
    extension: { maxCount: 2, maxTotal: 12h, requireApproval: true }
    approval:
      pendingTimeout: 1h
      stages:
        - { name: leads, approvers: { groups: [sre-leads] }, quorum: 1 }
        - { name: security, approvers: { groups: [security] }, quorum: 1 }
breakGlass:
  enabled: true
  subjects: { groups: [oncall] }
  entitlements: ["prod-db/*"]
  maxDuration: 1h
  minReasonLength: 20
scheduler:
  pollInterval: 200ms
  connectorTimeout: 2s
  provisionAttempts: 3
  revokeBackoff: { min: 20ms, max: 100ms }
auth: { publicUrl: "https://lapse.example.test" }
`;

const RULES = `    - { events: [request.pending, request.reminder, request.escalated, request.decided, extension.pending], channels: [mail] }
    - events: [break_glass.used, grant.revoke_failing, finding.opened, config.rejected]
      channels: [mail]
      to: { audience: false, groups: [security], addresses: [secops@example.test] }`;

const APPROVALS = `  approvals: { remindAfter: 1500ms, escalateAfter: 3s, escalateTo: { groups: [sre-managers] } }`;

/** alice asks (and is, in the directory, a manager too); bob and dave lead; carol is security; frank manages. */
const PEOPLE = [
  { name: 'alice', groups: ['sre', 'oncall', 'sre-managers'] },
  { name: 'bob', groups: ['sre-leads'] },
  { name: 'dave', groups: ['sre-leads'] },
  { name: 'carol', groups: ['security'] },
  { name: 'frank', groups: ['sre-managers'] },
];

async function addPeople(store: Store): Promise<void> {
  for (const person of PEOPLE) {
    await insertUser(store.db, {
      id: newId('user'),
      name: person.name,
      kind: 'user',
      groups: JSON.stringify(person.groups),
      password_hash: null,
      created_at: new Date(),
      disabled_at: null,
    });
    await setUserEmail(store.db, person.name, `${person.name}@example.test`);
  }
}

const hhmm = (minutes: number) => {
  const m = ((minutes % 1440) + 1440) % 1440;
  return `${String(Math.floor(m / 60)).padStart(2, '0')}:${String(m % 60).padStart(2, '0')}`;
};

describeEachStore('notification paths', ({ store }) => {
  let smtp: TestSmtpServer;
  let engine: Engine;
  const noop = new NoopConnector();
  beforeAll(async () => {
    smtp = await startSmtpServer({ requireAuth: true });
    const dir = mkdtempSync(join(tmpdir(), 'lapse-notify-paths-'));
    const caFile = join(dir, 'ca.pem');
    writeFileSync(caFile, smtp.pki.caPem);
    await addPeople(store());
    engine = new Engine({
      store: store(),
      // A generous send deadline: on the embedded database a revoke retried every 100 ms shares the
      // event loop with the SMTP client (a stall detector, not a benchmark).
      config: parseConfig(`${CONFIG}${notificationsYaml(smtp, caFile, RULES, APPROVALS).replace('timeout: 2s', 'timeout: 10s')}`, join(dir, 'lapse.yaml'), {
        SMTP_PASSWORD: smtp.password,
      }),
      connectors: connectorRegistry([noop]),
    });
    await engine.start();
  });
  afterAll(async () => {
    await engine?.stop();
    await smtp?.close();
  });

  /** The mail that arrived for these deliveries, by delivery id. */
  const mailOf = (deliveries: readonly Delivery[]): Received[] => deliveries.flatMap((d) => smtp.received.filter((m) => m.messageId === `<${d.id}@lapse>`));
  const deliveriesOf = (subject: string, event?: string) => listDeliveries(store().db, { subject, event });
  const settled = (subject: string, event: string, count: number, timeoutMs = 15_000) =>
    waitFor(
      () => deliveriesOf(subject, event),
      (list) => list.length >= count && list.every((d) => d.status !== 'pending'),
      timeoutMs,
    );

  it('reminds the open stage after remindAfter and escalates to escalateTo after escalateAfter, never to the requester', async () => {
    const { request } = await engine.submit({
      principal: alice,
      target: 'prod-db',
      entitlement: 'admin',
      durationMs: 3_600_000,
      reason: 'rotate the primary after INC-9',
    });
    const pending = await settled(request.id, 'request.pending', 2);
    expect(pending.map((d) => d.recipient).sort()).toEqual(['bob', 'dave']);

    const reminders = await settled(request.id, 'request.reminder', 2);
    expect(reminders.map((d) => [d.recipient, d.status]).sort()).toEqual([
      ['bob', 'sent'],
      ['dave', 'sent'],
    ]);
    // Counted on the database clock from the stage's opening.
    for (const r of reminders) expect(r.createdAt.getTime() - pending[0]!.createdAt.getTime()).toBeGreaterThanOrEqual(1_400);
    const reminder = mailOf(reminders).find((m) => m.to.includes('bob@example.test'))!;
    expect(reminder.subject).toBe("[Lapse] Reminder: alice's request for prod-db/admin still waits for approval");
    expect(reminder.text).toContain(`https://lapse.example.test/requests/${request.id}`);

    const escalations = await settled(request.id, 'request.escalated', 1);
    // frank manages; alice is a manager too, but it is her own request.
    expect(escalations.map((d) => d.recipient)).toEqual(['frank']);
    const escalation = mailOf(escalations)[0]!;
    expect(escalation.to).toEqual(['frank@example.test']);
    expect(escalation.subject).toBe("[Lapse] Escalation: alice's request for prod-db/admin is still not decided");
    expect(smtp.received.filter((m) => m.to.includes('alice@example.test') && m.text.includes(request.id))).toEqual([]);
  });

  it('moves the reminder when the next stage opens, and drops it once the request is decided', async () => {
    const { request } = await engine.submit({ principal: alice, target: 'prod-db', entitlement: 'admin', durationMs: 3_600_000, reason: 'check the replicas' });
    await settled(request.id, 'request.pending', 2);
    await engine.review({ requestId: request.id, reviewer: bob, decision: 'approve', comment: 'ok' });
    const advanced = Date.now();
    // The security stage opens: carol is asked, and reminded later; bob and dave are not reminded
    // again (a reminder of theirs can only be one that came due before the stage passed).
    const reminders = await waitFor(
      () => deliveriesOf(request.id, 'request.reminder'),
      (list) => list.some((d) => d.recipient === 'carol' && d.status === 'sent'),
    );
    expect(reminders.find((d) => d.recipient === 'carol')!.payload.stage).toBe('security');
    for (const early of reminders.filter((d) => d.recipient !== 'carol')) {
      expect(early.payload.stage).toBe('leads');
      expect(early.createdAt.getTime()).toBeLessThanOrEqual(advanced);
    }
    await engine.review({ requestId: request.id, reviewer: carol, decision: 'deny', comment: 'not now' });
    await settled(request.id, 'request.decided', 1);
    // Past escalateAfter of the second stage: decided requests are not escalated.
    await new Promise((resolve) => setTimeout(resolve, 3_500));
    expect(await deliveriesOf(request.id, 'request.escalated')).toEqual([]);
    const jobs = await store().db.selectFrom('jobs').select('kind').where('subject_id', '=', request.id).execute();
    expect(jobs).toEqual([]);
  });

  it('asks the approvers of an extension, and not the requester', async () => {
    const { request } = await engine.submit({ principal: alice, target: 'prod-db', entitlement: 'admin', durationMs: 3_600_000, reason: 'long migration' });
    await engine.review({ requestId: request.id, reviewer: bob, decision: 'approve', comment: 'ok' });
    await engine.review({ requestId: request.id, reviewer: carol, decision: 'approve', comment: 'ok' });
    const stored = await waitFor(
      () => engine.read.request(request.id),
      (r) => r?.grantId !== null && r?.grantId !== undefined,
    );
    await waitFor(
      () => getGrant(store().db, stored!.grantId!),
      (g) => g?.status === 'active',
    );
    const extension = await engine.extend({ grantId: stored!.grantId!, by: alice, durationMs: 1_800_000, reason: 'migration runs long' });
    expect(extension.status).toBe('pending');
    const asked = await settled(extension.id, 'extension.pending', 2);
    expect(asked.map((d) => [d.recipient, d.status]).sort()).toEqual([
      ['bob', 'sent'],
      ['dave', 'sent'],
    ]);
    const mail = mailOf(asked).find((m) => m.to.includes('bob@example.test'))!;
    expect(mail.subject).toBe('[Lapse] alice asks to extend prod-db/admin: your approval is needed');
    expect(mail.text).toContain('by 30m');
    expect(mail.text).toContain(`Review the extension: https://lapse.example.test/requests/${extension.id}`);
    expect(mail.headers.get('x-lapse-event')).toBe('extension.pending');
  });

  it('holds mail during the recipient quiet hours through the worker, sends it when they end, and never holds urgent events', async () => {
    const now = new Date();
    const minute = now.getUTCHours() * 60 + now.getUTCMinutes();
    await engine.notifications.setPreferences(
      { id: 'dave', kind: 'user', groups: ['sre-leads'] },
      { email: true, quietHours: { start: hhmm(minute - 60), end: hhmm(minute + 60) }, timezone: 'UTC' },
    );
    try {
      const { request } = await engine.submit({ principal: alice, target: 'prod-db', entitlement: 'admin', durationMs: 3_600_000, reason: 'quiet hours test' });
      const held = await waitFor(
        () => deliveriesOf(request.id, 'request.pending'),
        (list) => list.some((d) => d.recipient === 'bob' && d.status === 'sent') && list.some((d) => d.recipient === 'dave' && d.lastError !== null),
      );
      const daves = held.find((d) => d.recipient === 'dave')!;
      expect(daves.status).toBe('pending');
      expect(daves.attempts).toBe(0);
      expect(daves.lastError).toMatch(/^held for the recipient's quiet hours until \d{4}-\d\d-\d\dT/);
      const until = new Date(daves.lastError!.slice("held for the recipient's quiet hours until ".length));
      expect(Math.abs(until.getTime() - (now.getTime() + 60 * 60_000))).toBeLessThan(2 * 60_000);
      const job = await store().db.selectFrom('jobs').select(['due_at', 'locked_by']).where('subject_id', '=', daves.id).executeTakeFirstOrThrow();
      expect(new Date(job.due_at).getTime()).toBe(until.getTime());
      expect(job.locked_by).toBeNull();
      expect(mailOf([daves])).toEqual([]);

      // Urgent: break-glass reaches carol and secops now, whatever anyone's quiet hours.
      await engine.notifications.setPreferences(carol, { email: true, quietHours: { start: hhmm(minute - 60), end: hhmm(minute + 60) }, timezone: 'UTC' });
      const glass = await engine.breakGlass({
        principal: alice,
        target: 'prod-db',
        entitlement: 'readonly',
        durationMs: 600_000,
        reason: 'primary down, failover stuck for good',
      });
      const urgent = await settled(glass.id, 'break_glass.used', 2);
      expect(urgent.map((d) => [d.recipient, d.status, d.urgent]).sort()).toEqual([
        ['address:secops@example.test', 'sent', true],
        ['carol', 'sent', true],
      ]);

      // Quiet hours over (the clock reaching the hold's end, brought forward): dave gets it, once.
      await engine.notifications.setPreferences({ id: 'dave', kind: 'user', groups: ['sre-leads'] }, { email: true, quietHours: null, timezone: 'UTC' });
      await store()
        .db.updateTable('jobs')
        .set({ due_at: new Date(Date.now() - 1000) })
        .where('subject_id', '=', daves.id)
        .execute();
      engine.notifier.poke();
      const released = await settled(request.id, 'request.pending', 2);
      expect(released.find((d) => d.recipient === 'dave')).toMatchObject({ status: 'sent', attempts: 1, lastError: null });
      expect(mailOf([daves]).map((m) => m.to)).toEqual([['dave@example.test']]);
    } finally {
      await engine.notifications.setPreferences({ id: 'dave', kind: 'user', groups: ['sre-leads'] }, { email: true, quietHours: null, timezone: 'UTC' });
      await engine.notifications.setPreferences(carol, { email: true, quietHours: null, timezone: 'UTC' });
    }
  });

  it('routes break-glass use to security, with high importance, and not to the holder', async () => {
    const glass = await engine.breakGlass({
      principal: alice,
      target: 'prod-db',
      entitlement: 'admin',
      durationMs: 600_000,
      reason: 'the primary is down and failover is stuck',
    });
    const deliveries = await settled(glass.id, 'break_glass.used', 2);
    expect(deliveries.map((d) => d.recipient).sort()).toEqual(['address:secops@example.test', 'carol']);
    const mail = mailOf(deliveries).find((m) => m.to.includes('carol@example.test'))!;
    expect(mail.subject).toBe('[Lapse] BREAK-GLASS: alice opened prod-db/admin');
    expect(mail.headers.get('priority')).toBe('high'); // Importance: high, as mailparser reads it;
    expect(mail.text).toContain(`https://lapse.example.test/requests/${glass.id}`);
    expect(smtp.received.filter((m) => m.to.includes('alice@example.test') && m.text.includes(glass.id))).toEqual([]);
  });

  it('tells security once of a revocation that keeps failing, however often it is retried', async () => {
    const { request } = await engine.submit({ principal: alice, target: 'flaky', entitlement: 'readonly', durationMs: 3_600_000, reason: 'look at flaky' });
    const grantId = request.grantId!;
    await waitFor(
      () => getGrant(store().db, grantId),
      (g) => g?.status === 'active',
    );
    noop.behaviour('flaky').failRevoke = true;
    try {
      await engine.release({ grantId, by: alice });
      await waitFor(
        () => getGrant(store().db, grantId),
        (g) => (g?.revokeAttempts ?? 0) >= 3,
      );
      const deliveries = await settled(grantId, 'grant.revoke_failing', 2);
      expect(deliveries.map((d) => [d.recipient, d.urgent, d.status, d.lastError]).sort()).toEqual([
        ['address:secops@example.test', true, 'sent', null],
        ['carol', true, 'sent', null],
      ]);
      const mail = mailOf(deliveries).find((m) => m.to.includes('carol@example.test'))!;
      expect(mail.subject).toBe('[Lapse] Revocation failing: flaky/readonly of alice');
      expect(mail.text).toMatch(/Last error:\s+.*told to fail revoke/);
      expect(mail.headers.get('priority')).toBe('high'); // Importance: high, as mailparser reads it;
    } finally {
      noop.behaviour('flaky').failRevoke = false;
    }
    await waitFor(
      () => getGrant(store().db, grantId),
      (g) => g?.status === 'revoked',
    );
    expect(await deliveriesOf(grantId, 'grant.revoke_failing')).toHaveLength(2);
  });

  it('routes a reconciliation finding and a rejected config to security', async () => {
    noop.addUnmanaged(engine.config.targets.get('prod-db')!, 'readonly', 'dba-dan');
    const [report] = await engine.reconcile('prod-db', { actor: 'cli:test' });
    const finding = report!.findings.find((f) => f.account === 'dba-dan')!;
    const found = await settled(finding.id, 'finding.opened', 2);
    expect(found.map((d) => d.recipient).sort()).toEqual(['address:secops@example.test', 'carol']);
    const mail = mailOf(found).find((m) => m.to.includes('carol@example.test'))!;
    expect(mail.subject).toBe('[Lapse] Drift found on prod-db: standing access for dba-dan');
    expect(mail.text).toContain('See the findings: https://lapse.example.test/admin');

    const before = await listDeliveries(store().db, { event: 'config.rejected' });
    await engine.configRejected(new Error('policies[0].subjects: expected an object (lapse.yaml line 12)'));
    const rejected = await waitFor(
      () => listDeliveries(store().db, { event: 'config.rejected' }),
      (list) => list.length >= before.length + 2 && list.every((d) => d.status !== 'pending'),
    );
    const fresh = rejected.filter((d) => !before.some((b) => b.id === d.id));
    expect(fresh.map((d) => [d.recipient, d.status]).sort()).toEqual([
      ['address:secops@example.test', 'sent'],
      ['carol', 'sent'],
    ]);
    const told = mailOf(fresh).find((m) => m.to.includes('carol@example.test'))!;
    expect(told.subject).toBe('[Lapse] Lapse rejected a new configuration');
    expect(told.text).toContain('expected an object (lapse.yaml line 12)');
    // Only security hears: nobody else is the audience of these events.
    expect(fresh.every((d) => d.recipient === 'carol' || d.recipient.startsWith('address:'))).toBe(true);
  });
});
