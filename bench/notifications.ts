import { fork } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../src/config/index.js';
import { connectorRegistry, NoopConnector } from '../src/connectors/index.js';
import { newId } from '../src/domain/ids.js';
import { Engine } from '../src/engine/index.js';
import { insertDeliveries, insertUser, scheduleJobsNow, setUserEmail, type Store } from '../src/store/index.js';
import { BENCH_CONFIG, benchIsolatedRevocation } from './lifecycle.js';
import { summarise, type BenchResult } from './stats.js';

/**
 * Notifications (docs/notifications.md): (1) with `count` deliveries queued at once, the time from
 * each delivery's commit to the SMTP server having the message (a real SMTP server over STARTTLS);
 * (2) revocation lag while the SMTP server is stalled (accepts connections, never answers), to
 * compare with the same run without notifications: a stuck channel must not delay revocation.
 */
/** The bench's SMTP server, in a child process (bench/smtp-server.ts). */
interface BenchSmtp {
  readonly port: number;
  readonly received: { messageId: string; at: number }[];
  stall(on: boolean): void;
  waitFor(count: number, timeoutMs: number): Promise<void>;
  close(): Promise<void>;
}

async function startBenchSmtp(): Promise<BenchSmtp & { caPem: string }> {
  const child = fork(new URL('./smtp-server.ts', import.meta.url).pathname, [], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const received: { messageId: string; at: number }[] = [];
  const ready = await new Promise<{ port: number; caPem: string }>((resolve, reject) => {
    child.on('message', (message: { ready?: { port: number; caPem: string }; received?: { messageId: string; at: number }[] }) => {
      if (message.ready) resolve(message.ready);
      if (message.received) received.push(...message.received);
    });
    child.once('exit', (code) => reject(new Error(`the bench SMTP server exited (${code})`)));
  });
  return {
    ...ready,
    received,
    stall: (on) => child.send({ stall: on }),
    async waitFor(count, timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      while (received.length < count) {
        if (Date.now() > deadline) throw new Error(`expected ${count} messages within ${timeoutMs} ms; got ${received.length}`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    },
    close: () =>
      new Promise<void>((resolve) => {
        child.once('exit', () => resolve());
        child.send({ close: true });
      }),
  };
}

function notificationsConfig(smtp: BenchSmtp, caFile: string, events: string): string {
  return `${BENCH_CONFIG}
notifications:
  channels:
    mail:
      type: email
      from: lapse@example.test
      smtp: { host: 127.0.0.1, port: ${smtp.port}, ca: "\${file:${caFile}}", timeout: 5s }
      retry: { attempts: 5, backoff: { min: 1s, max: 10s } }
  rules:
    - { events: [${events}], channels: [mail] }
`;
}

async function withSmtp<T>(run: (smtp: BenchSmtp, caFile: string) => Promise<T>): Promise<T> {
  const smtp = await startBenchSmtp();
  const dir = mkdtempSync(join(tmpdir(), 'lapse-bench-smtp-'));
  const caFile = join(dir, 'ca.pem');
  writeFileSync(caFile, smtp.caPem);
  try {
    return await run(smtp, caFile);
  } finally {
    await smtp.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** `count` deliveries committed in one transaction (a burst), then sent by the worker. */
export async function benchQueuedToSmtp(store: Store, backend: string, count: number): Promise<BenchResult> {
  return withSmtp(async (smtp, caFile) => {
    const engine = new Engine({
      store,
      config: parseConfig(notificationsConfig(smtp, caFile, 'grant.active'), 'bench.yaml', {}),
      connectors: connectorRegistry([new NoopConnector()]),
    });
    const now = new Date();
    const ids: string[] = [];
    await store.db.transaction().execute(async (tx) => {
      for (let i = 0; i < count; i++) {
        const name = `mail-${i}`;
        await insertUser(tx, { id: newId('user'), name, kind: 'user', groups: '[]', password_hash: null, created_at: now, disabled_at: null });
        await setUserEmail(tx, name, `${name}@example.test`);
      }
    });
    await engine.start();
    try {
      await store.db.transaction().execute(async (tx) => {
        const deliveries = Array.from({ length: count }, (_, i) => ({
          id: newId('delivery'),
          dedupeKey: `bench:${i}`,
          event: 'grant.active',
          subjectId: null,
          channel: 'mail',
          channelType: 'email',
          recipient: `mail-${i}`,
          urgent: false,
          payload: { entitlement: 'bench/readonly', requester: `mail-${i}`, expiresAt: new Date(Date.now() + 3_600_000).toISOString() },
        }));
        ids.push(...(await insertDeliveries(tx, deliveries, new Date())));
        await scheduleJobsNow(tx, 'notify', ids);
      });
      const committed = Date.now();
      engine.notifier.poke();
      await smtp.waitFor(count, 300_000);
      const rows = await store.db.selectFrom('notification_deliveries').select(['id', 'created_at', 'status']).where('id', 'in', ids).execute();
      const sentBy = new Map(smtp.received.map((m) => [m.messageId, m.at]));
      const latencies = rows.map((r) => (sentBy.get(`<${r.id}@lapse>`) ?? Number.NaN) - committed);
      const last = Math.max(...smtp.received.map((m) => m.at));
      return summarise('notify_queued_to_smtp', backend, latencies, last - committed, { queued: count, drain_ms: last - committed });
    } finally {
      await engine.stop();
    }
  });
}

/** Revocation lag with notifications of every grant's start and end, and the SMTP server stalled. */
export async function benchRevocationWithStalledSmtp(store: Store, backend: string, count: number): Promise<BenchResult> {
  return withSmtp(async (smtp, caFile) => {
    smtp.stall(true);
    const engine = new Engine({
      store,
      config: parseConfig(notificationsConfig(smtp, caFile, 'grant.active, grant.ended'), 'bench.yaml', {}),
      connectors: connectorRegistry([new NoopConnector()]),
    });
    const now = new Date();
    for (let i = 0; i < count; i++) {
      const name = `user-${200_000 + i}`;
      await insertUser(store.db, { id: newId('user'), name, kind: 'user', groups: '[]', password_hash: null, created_at: now, disabled_at: null });
      await setUserEmail(store.db, name, `${name}@example.test`);
    }
    await engine.start();
    try {
      const result = await benchIsolatedRevocation(engine, backend, count);
      const pending = await store.db.selectFrom('notification_deliveries').select('id').where('status', '=', 'pending').execute();
      return { ...result, scenario: 'revocation_lag_smtp_stalled', deliveries_pending: pending.length, smtp_received: smtp.received.length };
    } finally {
      await engine.stop();
    }
  });
}
