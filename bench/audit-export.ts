/**
 * Audit export throughput (docs/monitoring.md): `count` events (default 100,000; BENCH_QUICK=1:
 * 10,000) exported from PGlite to a real rsyslogd over TLS (syslog format) and to the fake Splunk
 * HEC (OCSF), batch 500. One JSON line per transport; `per_s` is events/s, target ≥ 10,000.
 * Run: node --import tsx bench/audit-export.ts
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { appendAuditEvents } from '../src/audit/index.js';
import { AuditExporter } from '../src/audit/exporter.js';
import type { AuditSinkSettings } from '../src/domain/audit-export.js';
import { openStore } from '../src/store/index.js';
import { makeTestPki, startFakeHec, startRsyslog } from '../test/support/siem-receivers.js';
import { emitResult, summarise } from './stats.js';

const count = process.env.BENCH_QUICK === '1' ? 10_000 : 100_000;
const dir = mkdtempSync(join(tmpdir(), 'lapse-bench-export-'));
const store = await openStore({ dataDir: join(dir, 'data') });
const pki = makeTestPki(join(dir, 'pki'));
const rsyslog = await startRsyslog(join(dir, 'rsyslog'), pki);
const hec = await startFakeHec('bench-token');
try {
  for (let done = 0; done < count; done += 1_000) {
    await store.db.transaction().execute((tx) =>
      appendAuditEvents(
        tx,
        Array.from({ length: 1_000 }, (_, i) => ({
          action: 'grant.activated',
          actor: 'system',
          subject: `grt_${done + i}`,
          data: { entitlement: 'prod-db/readonly', principal: `user-${i % 50}` },
        })),
      ),
    );
  }
  const sinks: AuditSinkSettings[] = [
    {
      name: 'syslog_tls',
      format: 'syslog',
      transport: { type: 'syslog-tls', host: '127.0.0.1', port: rsyslog.port, ca: pki.caPem },
      batchSize: 500,
      checkpoints: false,
    },
    {
      name: 'splunk_hec',
      format: 'ocsf',
      transport: { type: 'splunk-hec', url: hec.url, token: 'bench-token', sourcetype: 'lapse:ocsf' },
      batchSize: 500,
      checkpoints: false,
    },
  ];
  for (const sink of sinks) {
    const exporter = new AuditExporter(
      store.db,
      { sinks: [sink], witnesses: [], pollIntervalMs: 1_000, timeoutMs: 30_000, backoffMinMs: 1_000, backoffMaxMs: 5_000 },
      { hostname: 'bench', productVersion: '0', onError: () => {} },
    );
    const started = performance.now();
    const sent = await exporter.exportOnce();
    let wall = performance.now() - started;
    if (sink.name === 'syslog_tls') {
      // Until rsyslog has written them all (the sender's flush is not the receiver's write).
      while (rsyslog.lines().length < count) await new Promise((r) => setTimeout(r, 50));
      wall = performance.now() - started;
    }
    await exporter.stop();
    if (sent !== count) throw new Error(`${sink.name}: sent ${sent} of ${count}`);
    emitResult(summarise(`audit_export_${sink.name}`, 'pglite', [], wall, { per_s: Math.round(count / (wall / 1000)), events: count, batch: sink.batchSize }));
  }
} finally {
  await rsyslog.stop();
  await hec.close();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
}
