import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NOTIFY_FAILPOINTS } from '../src/engine/index.js';
import { openStore } from '../src/store/index.js';
import { notificationsYaml, startSmtpServer, type TestSmtpServer } from './support/smtp.js';
import { backends, createServerDatabase, type ServerDatabase } from './support/stores.js';

/**
 * kill -9 between a notification's commit and its send, and between its send and the record of
 * it: after a restart every message has arrived, each under its one stable Message-ID, at most
 * twice (at least once, never lost, never a second message), and the outbox ends all sent.
 */
const GRANTS = 3;

function run(args: string[], env: Record<string, string>): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'test/support/notify-crash-child.ts', ...args], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('exit', (code, signal) => resolve({ code, signal, stderr }));
  });
}

describe.each(backends())('notifications survive kill -9 [%s]', (backend) => {
  const root = mkdtempSync(join(tmpdir(), 'lapse-notify-crash-'));
  const databases: ServerDatabase[] = [];
  let smtp: TestSmtpServer;
  beforeAll(async () => {
    smtp = await startSmtpServer({ requireAuth: true });
    writeFileSync(join(root, 'ca.pem'), smtp.pki.caPem);
  });
  afterAll(async () => {
    await smtp?.close();
    for (const database of databases) await database.drop();
    rmSync(root, { recursive: true, force: true });
  });

  it.each(NOTIFY_FAILPOINTS)(
    'delivers every message once per stable id after a crash at %s',
    async (failpoint) => {
      const dir = mkdtempSync(join(root, 'case-'));
      const configPath = join(dir, 'lapse.yaml');
      // NB. A generous send deadline: a send abandoned at its deadline may still complete in the
      // background and its retry repeats it (same Message-ID); that is at least once too, but not
      // the crash this test counts copies for. A loaded machine hits a 2 s deadline on TLS set-up.
      writeFileSync(
        configPath,
        `version: 1
targets:
  crashy: { connector: noop, entitlements: { readonly: {} } }
policies:
  - { name: all, subjects: { groups: [sre] }, entitlements: ["crashy/*"], autoApprove: true }
scheduler: { pollInterval: 100ms }
${notificationsYaml(smtp, join(root, 'ca.pem'), '    - { events: [grant.active], channels: [mail] }').replace('timeout: 2s', 'timeout: 15s')}`,
      );
      let where = join(dir, 'data');
      if (backend === 'postgres') {
        const database = await createServerDatabase();
        databases.push(database);
        where = database.url;
      }
      const env = { SMTP_PASSWORD: smtp.password };
      const first = smtp.received.length;
      const crashed = await run(['submit', configPath, where, String(GRANTS)], { ...env, LAPSE_FAILPOINTS: failpoint });
      expect(crashed.signal, `process should have been killed at ${failpoint}: ${crashed.stderr}`).toBe('SIGKILL');
      const resumed = await run(['resume', configPath, where, '0'], { ...env, LAPSE_FAILPOINTS: '' });
      expect(resumed.code, resumed.stderr).toBe(0);

      const store = await openStore(backend === 'postgres' ? { databaseUrl: where } : { dataDir: where });
      try {
        const deliveries = await store.db.selectFrom('notification_deliveries').select(['id', 'status', 'recipient']).execute();
        expect(deliveries.length).toBeGreaterThan(0);
        expect(deliveries.every((d) => d.status === 'sent')).toBe(true);
        const arrived = smtp.received.slice(first);
        for (const delivery of deliveries) {
          const copies = arrived.filter((m) => m.messageId === `<${delivery.id}@lapse>`);
          expect(copies.length, delivery.id).toBeGreaterThanOrEqual(1);
          expect(copies.length, delivery.id).toBeLessThanOrEqual(2);
          expect(copies[0]!.to).toEqual([`${delivery.recipient}@example.test`]);
        }
        // Nothing arrived that the outbox does not know of (no second message under a new id).
        expect(new Set(arrived.map((m) => m.messageId)).size).toBe(deliveries.length);
        // Killed after a send and before its record: that message comes again, under the same id.
        if (failpoint === 'notify:after-send') expect(arrived.length).toBeGreaterThan(deliveries.length);
        const left = await store.db.selectFrom('jobs').select('kind').where('kind', 'in', ['notify']).execute();
        expect(left).toEqual([]);
      } finally {
        await store.close();
      }
    },
    90_000,
  );
});
