import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { parseConfig } from '../config/index.js';
import { connectorRegistry, NoopConnector } from '../connectors/index.js';
import { newId } from '../domain/ids.js';
import { insertDeliveries, insertUser, listDeliveries, scheduleJobsNow, setUserEmail } from '../store/index.js';
import { TEST_CONFIG, waitFor } from '../../test/support/engine.js';
import { describeEachStore } from '../../test/support/stores.js';
import { startSmtpServer, type TestSmtpServer } from '../../test/support/smtp.js';
import { Engine } from './engine.js';

/**
 * A stalled SMTP server (accepts connections, never answers) trips the round: the sends that
 * started time out and count an attempt; the rest go back unattempted with the same backoff,
 * instead of each waiting out its own timeout in turn.
 */
const COUNT = 20;

describeEachStore('a stalled channel', ({ store }) => {
  let smtp: TestSmtpServer;
  let engine: Engine;
  beforeAll(async () => {
    smtp = await startSmtpServer();
    smtp.stall(true);
    const dir = mkdtempSync(join(tmpdir(), 'lapse-notify-stall-'));
    const caFile = join(dir, 'ca.pem');
    writeFileSync(caFile, smtp.pki.caPem);
    const yaml = `${TEST_CONFIG}
notifications:
  channels:
    mail:
      type: email
      from: lapse@example.test
      smtp: { host: 127.0.0.1, port: ${smtp.port}, ca: "\${file:${caFile}}", timeout: 500ms, connections: 4 }
      retry: { attempts: 5, backoff: { min: 1h, max: 1h } }
  rules:
    - { events: [grant.active], channels: [mail] }
`;
    const now = new Date();
    for (let i = 0; i < COUNT; i++) {
      await insertUser(store().db, { id: newId('user'), name: `s${i}`, kind: 'user', groups: '[]', password_hash: null, created_at: now, disabled_at: null });
      await setUserEmail(store().db, `s${i}`, `s${i}@example.test`);
    }
    engine = new Engine({ store: store(), config: parseConfig(yaml, join(dir, 'lapse.yaml'), {}), connectors: connectorRegistry([new NoopConnector()]) });
  });
  afterAll(async () => {
    await engine?.stop();
    await smtp?.close();
  });

  it('tries as many sends as the channel has connections, and puts the rest back unattempted', async () => {
    await store()
      .db.transaction()
      .execute(async (tx) => {
        const ids = await insertDeliveries(
          tx,
          Array.from({ length: COUNT }, (_, i) => ({
            id: newId('delivery'),
            dedupeKey: `stall:${i}`,
            event: 'grant.active',
            subjectId: null,
            channel: 'mail',
            channelType: 'email',
            recipient: `s${i}`,
            urgent: false,
            payload: { entitlement: 'prod-db/readonly', requester: `s${i}` },
          })),
          new Date(),
        );
        await scheduleJobsNow(tx, 'notify', ids);
      });
    const started = Date.now();
    await engine.start();
    const deliveries = await waitFor(
      () => listDeliveries(store().db, { event: 'grant.active', limit: 100 }),
      (list) => list.length === COUNT && list.every((d) => d.lastError !== null),
      20_000,
    );
    // One round: four sends waited out their 500 ms, not twenty in turn (5 s).
    expect(Date.now() - started).toBeLessThan(4_500);
    const tried = deliveries.filter((d) => d.attempts === 1);
    const untried = deliveries.filter((d) => d.attempts === 0);
    expect(tried.length).toBeGreaterThanOrEqual(1);
    expect(tried.length).toBeLessThanOrEqual(4);
    expect(tried.length + untried.length).toBe(COUNT);
    for (const d of tried) expect(d.lastError).toMatch(/^attempt 1: /);
    for (const d of untried) expect(d.lastError).toMatch(/^not tried: channel mail failed on another message/);
    expect(deliveries.every((d) => d.status === 'pending')).toBe(true);
    // All due again after the backoff (1 h), none lost.
    const jobs = await store().db.selectFrom('jobs').select(['due_at', 'locked_by']).where('kind', '=', 'notify').execute();
    expect(jobs).toHaveLength(COUNT);
    for (const job of jobs) {
      expect(job.locked_by).toBeNull();
      expect(new Date(job.due_at).getTime()).toBeGreaterThan(Date.now() + 30 * 60_000);
    }
    expect(smtp.received).toEqual([]);
  });
});
