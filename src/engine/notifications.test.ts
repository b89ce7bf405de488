import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { parseConfig } from '../config/index.js';
import { connectorRegistry, NoopConnector } from '../connectors/index.js';
import { newId } from '../domain/ids.js';
import { insertUser, listDeliveries, setUserEmail, type Store } from '../store/index.js';
import { alice, bob, carol, TEST_CONFIG, waitFor } from '../../test/support/engine.js';
import { describeEachStore } from '../../test/support/stores.js';
import { notificationsYaml, startSmtpServer, type TestSmtpServer } from '../../test/support/smtp.js';
import { Engine } from './engine.js';

const dave = { id: 'dave', kind: 'user' as const, groups: ['sre', 'sre-leads'] };

async function addPeople(store: Store): Promise<void> {
  const now = new Date();
  for (const person of [alice, bob, carol, dave, { id: 'erin', groups: ['sre-leads'] }]) {
    await insertUser(store.db, {
      id: newId('user'),
      name: person.id,
      kind: 'user',
      groups: JSON.stringify(person.groups),
      password_hash: null,
      created_at: now,
      disabled_at: null,
    });
    if (person.id !== 'erin') await setUserEmail(store.db, person.id, `${person.id}@example.test`);
  }
}

describeEachStore('notifications by email, end to end', ({ store }) => {
  let smtp: TestSmtpServer;
  let engine: Engine;
  beforeAll(async () => {
    smtp = await startSmtpServer({ requireAuth: true });
    const dir = mkdtempSync(join(tmpdir(), 'lapse-notify-'));
    const caFile = join(dir, 'ca.pem');
    writeFileSync(caFile, smtp.pki.caPem);
    const yaml = `${TEST_CONFIG}
auth: { publicUrl: "https://lapse.example.test" }
${notificationsYaml(smtp, caFile, '    - { events: [request.pending, request.decided, grant.ending_soon], channels: [mail] }', '  endingSoon: 2m')}`;
    await addPeople(store());
    engine = new Engine({
      store: store(),
      config: parseConfig(yaml, join(dir, 'lapse.yaml'), { SMTP_PASSWORD: smtp.password }),
      connectors: connectorRegistry([new NoopConnector()]),
    });
    await engine.start();
  });
  afterAll(async () => {
    await engine?.stop();
    await smtp?.close();
  });

  const mailTo = (address: string) => smtp.received.filter((m) => m.to.includes(address));

  it('asks the approvers of each stage as it opens, and tells the requester the decision, with deep links', async () => {
    const { request } = await engine.submit({
      principal: alice,
      target: 'prod-db',
      entitlement: 'admin',
      durationMs: 3_600_000,
      reason: 'rotate the primary after INC-7',
      ticket: 'OPS-7',
    });
    await waitFor(
      async () => mailTo('bob@example.test').length,
      (n) => n === 1,
    );
    const ask = mailTo('bob@example.test')[0]!;
    expect(ask.secure).toBe(true); // STARTTLS, required by the client
    expect(ask.subject).toBe('[Lapse] alice asks for prod-db/admin: your approval is needed');
    expect(ask.text).toContain(`Review the request: https://lapse.example.test/requests/${request.id}`);
    expect(ask.text).toMatch(/Reason:\s+rotate the primary after INC-7/);
    expect(ask.html).toContain(`href="https://lapse.example.test/requests/${request.id}"`);
    expect(ask.headers.get('x-lapse-event')).toBe('request.pending');
    // dave leads too; erin has no address on record, so hers is skipped, visibly.
    const deliveries = await waitFor(
      () => listDeliveries(store().db, { subject: request.id }),
      (list) => list.every((d) => d.status !== 'pending'),
    );
    expect(deliveries.map((d) => [d.recipient, d.status]).sort()).toEqual([
      ['bob', 'sent'],
      ['dave', 'sent'],
      ['erin', 'skipped'],
    ]);
    expect(deliveries.find((d) => d.recipient === 'erin')?.lastError).toMatch(/no email address on record for erin/);
    const sent = deliveries.find((d) => d.recipient === 'bob')!;
    expect(ask.messageId).toBe(`<${sent.id}@lapse>`);
    // Carol's stage has not opened: she has heard nothing yet.
    expect(mailTo('carol@example.test')).toEqual([]);

    await engine.review({ requestId: request.id, reviewer: bob, decision: 'approve', comment: 'ok' });
    await waitFor(
      async () => mailTo('carol@example.test').length,
      (n) => n === 1,
    );
    expect(mailTo('carol@example.test')[0]!.subject).toContain('alice asks for prod-db/admin');

    await engine.review({ requestId: request.id, reviewer: carol, decision: 'approve', comment: 'fine' });
    await waitFor(
      async () => mailTo('alice@example.test').length,
      (n) => n === 1,
    );
    const decided = mailTo('alice@example.test')[0]!;
    expect(decided.subject).toBe('[Lapse] Your request for prod-db/admin was approved');
    expect(decided.text).toContain('approved by carol');
    expect(decided.text).toContain(`https://lapse.example.test/requests/${request.id}`);
    // No secrets in mail: nothing of the SMTP password, the config's only secret.
    for (const mail of smtp.received) expect(mail.text + mail.html).not.toContain(smtp.password);
  });

  it('never asks a requester to approve their own request', async () => {
    const before = mailTo('dave@example.test').length;
    const { request } = await engine.submit({
      principal: dave,
      target: 'prod-db',
      entitlement: 'admin',
      durationMs: 3_600_000,
      reason: 'vacuum the big table',
      ticket: 'OPS-8',
    });
    const deliveries = await waitFor(
      () => listDeliveries(store().db, { subject: request.id }),
      (list) => list.length > 0 && list.every((d) => d.status !== 'pending'),
    );
    expect(deliveries.map((d) => d.recipient).sort()).toEqual(['bob', 'erin']);
    expect(mailTo('dave@example.test').length).toBe(before);
  });

  it('tells the holder shortly before access ends, with a link to extend', async () => {
    const { request } = await engine.submit({ principal: alice, target: 'prod-db', entitlement: 'readonly', durationMs: 121_000, reason: 'a quick look' });
    const grantId = request.grantId!;
    await waitFor(
      async () => smtp.received.filter((m) => m.text.includes(`/access#${grantId}`)).length,
      (n) => n === 1,
    );
    const ending = smtp.received.find((m) => m.text.includes(`/access#${grantId}`))!;
    expect(ending.to).toEqual(['alice@example.test']);
    expect(ending.subject).toMatch(/^\[Lapse\] Your access to prod-db\/readonly ends in 2m/);
    expect(ending.text).toContain(`Extend your access: https://lapse.example.test/access#${grantId}`);
  });
});
