import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { appendAuditEvents, loadOrCreateSigningKey, writeCheckpoint } from '../src/audit/index.js';
import { AuditExporter } from '../src/audit/exporter.js';
import type { AuditExportSettings, AuditSinkSettings, AuditWitnessSettings } from '../src/domain/audit-export.js';
import { listExportCursors, type Store } from '../src/store/index.js';
import {
  makeTestPki,
  startFakeHec,
  startOtlpReceiver,
  startRsyslog,
  startTimestampAuthority,
  type FakeHec,
  type OtlpReceiver,
  type Rsyslog,
  type TestPki,
  type TimestampAuthority,
} from './support/siem-receivers.js';
import { offline } from './support/environment.js';
import { openPgliteStore } from './support/stores.js';

/**
 * Each transport against a real receiver (rsyslogd with gnutls) or a local fake that speaks the
 * protocol and refuses what the real service refuses (Splunk HEC, an OTLP/HTTP collector, an RFC
 * 3161 authority on `openssl ts`). One database; each test exports from its own cursor.
 */
const dir = mkdtempSync(join(tmpdir(), 'lapse-siem-'));
let pki: TestPki;
let rsyslog: Rsyslog;
let hec: FakeHec;
let otlp: OtlpReceiver;
let tsa: TimestampAuthority;
let store: Store;
const HEC_TOKEN = '5e1c1a3e-0000-4000-8000-c0ffee000001';
const key = loadOrCreateSigningKey({ dataDir: join(dir, 'key') });

beforeAll(async () => {
  pki = makeTestPki(join(dir, 'pki'));
  [rsyslog, hec, otlp, tsa, store] = await Promise.all([
    startRsyslog(join(dir, 'rsyslog'), pki),
    startFakeHec(HEC_TOKEN),
    startOtlpReceiver(),
    startTimestampAuthority(join(dir, 'pki'), pki),
    openPgliteStore(),
  ]);
  // Text that needs escaping in every format.
  await store.db.transaction().execute((tx) =>
    appendAuditEvents(
      tx,
      Array.from({ length: 25 }, (_, i) => ({
        action: i % 5 === 0 ? 'grant.activated' : 'auth.login',
        actor: `user-${i}`,
        subject: `grt_${i}`,
        data: { reason: `] "x" \\ | a=b ${i}`, entitlement: 'prod-db/readonly', principal: `user-${i}` },
      })),
    ),
  );
  await writeCheckpoint(store.db, key);
}, 60_000);

afterAll(async () => {
  await Promise.all([rsyslog?.stop(), hec?.close(), otlp?.close(), tsa?.close(), store?.close()]);
  rmSync(dir, { recursive: true, force: true });
});

const exporter = (sinks: AuditSinkSettings[], witnesses: AuditWitnessSettings[] = [], onError = vi.fn()) => {
  const settings: AuditExportSettings = { sinks, witnesses, pollIntervalMs: 50, timeoutMs: 5_000, backoffMinMs: 50, backoffMaxMs: 200 };
  return new AuditExporter(store.db, settings, { hostname: 'lapse-test', productVersion: '0.0.0', onError });
};
const cursor = async (name: string) => (await listExportCursors(store.db)).find((c) => c.name === name);

// rsyslogd (rsyslog-gnutls) is installed by .ci/run; the offline suite leaves it out.
describe.skipIf(offline())('syslog over TLS (RFC 5425) to a real rsyslogd', () => {
  it('delivers every event octet-counted, parsed by rsyslog as RFC 5424 with structured data, and the checkpoint', async () => {
    const sink: AuditSinkSettings = {
      name: 'rsyslog',
      format: 'syslog',
      transport: { type: 'syslog-tls', host: '127.0.0.1', port: rsyslog.port, ca: pki.caPem },
      batchSize: 10,
      checkpoints: true,
    };
    const running = exporter([sink]);
    try {
      expect(await running.exportOnce()).toBe(26);
    } finally {
      await running.stop();
    }
    await vi.waitFor(() => expect(rsyslog.lines()).toHaveLength(26), { timeout: 10_000, interval: 100 });
    const lines = rsyslog.lines();
    const rows = await store.db.selectFrom('audit_events').select(['seq', 'hash', 'payload']).orderBy('seq').execute();
    rows.forEach((row, i) => {
      const [msgid, sd, ...msg] = lines[i]!.split('|');
      expect(msgid).toBe(JSON.parse(row.payload).action);
      expect(sd).toContain(`seq="${row.seq}" hash="${row.hash}"`);
      expect(sd).toContain('[lapse@32473 ');
      expect(msg.join('|').trim()).toBe(row.payload);
    });
    expect(lines[25]).toMatch(/^audit\.checkpoint\|\[lapse@32473 seq="25" hash="[0-9a-f]{64}" keyId=/);
  });

  it('refuses a receiver whose certificate does not chain to the configured CA, and keeps its cursor', async () => {
    const other = makeTestPki(join(dir, 'other-pki'));
    const sink: AuditSinkSettings = {
      name: 'rsyslog-wrong-ca',
      format: 'syslog',
      transport: { type: 'syslog-tls', host: '127.0.0.1', port: rsyslog.port, ca: other.caPem },
      batchSize: 10,
      checkpoints: false,
    };
    const running = exporter([sink]);
    await expect(running.exportOnce()).rejects.toThrow(/syslog-tls 127.0.0.1:\d+: .*(certificate|self.signed|verify)/i);
    await running.stop();
    expect(await cursor('sink:rsyslog-wrong-ca')).toMatchObject({ seq: 0, failures: 1 });
  });
});

describe('Splunk HTTP Event Collector (fake that checks token and shape)', () => {
  it('batches events with Authorization: Splunk <token>, OCSF objects as events', async () => {
    const before = hec.requests.count;
    const sink: AuditSinkSettings = {
      name: 'hec',
      format: 'ocsf',
      transport: { type: 'splunk-hec', url: hec.url, token: HEC_TOKEN, sourcetype: 'lapse:ocsf', index: 'security' },
      batchSize: 10,
      checkpoints: true,
    };
    const running = exporter([sink]);
    expect(await running.exportOnce()).toBe(26);
    await running.stop();
    expect(hec.requests.count - before).toBe(4);
    const events = hec.events.filter((e) => e.sourcetype === 'lapse:ocsf');
    expect(events).toHaveLength(26);
    expect(events[0]).toMatchObject({
      host: 'lapse-test',
      source: 'lapse',
      index: 'security',
      event: { class_uid: 3005, type_uid: 300501, metadata: { sequence: 1 } },
    });
    expect(events[0]!.time).toBeCloseTo(Date.now() / 1000, -3);
    expect(events[1]).toMatchObject({ event: { class_uid: 3002, type_uid: 300201 } });
  });

  it('a wrong token is refused; the error names the answer, never the token; the cursor stays', async () => {
    const onError = vi.fn();
    const sink: AuditSinkSettings = {
      name: 'hec-bad',
      format: 'cef',
      transport: { type: 'splunk-hec', url: hec.url, token: 'wrong-token-value', sourcetype: 'lapse:cef' },
      batchSize: 10,
      checkpoints: false,
    };
    const running = exporter([sink], [], onError);
    const error = await running.exportOnce().catch((e: unknown) => e as Error);
    await running.stop();
    expect(String(error)).toMatch(/answered HTTP 403: \{"text":"Invalid token","code":4\}/);
    expect(String(error)).not.toContain('wrong-token-value');
    expect(await cursor('sink:hec-bad')).toMatchObject({ seq: 0, failures: 1 });
    expect((await cursor('sink:hec-bad'))!.lastError).not.toContain('wrong-token-value');
  });

  it('a busy collector (503) is retried and then caught up in order, CEF sent as text', async () => {
    hec.busy = true;
    const onError = vi.fn();
    const sink: AuditSinkSettings = {
      name: 'hec-busy',
      format: 'cef',
      transport: { type: 'splunk-hec', url: hec.url, token: HEC_TOKEN, sourcetype: 'lapse:cef' },
      batchSize: 7,
      checkpoints: false,
    };
    const running = exporter([sink], [], onError);
    running.start();
    try {
      await vi.waitFor(() => expect(onError).toHaveBeenCalled(), { timeout: 5_000 });
      hec.busy = false;
      await vi.waitFor(() => expect(hec.events.filter((e) => e.sourcetype === 'lapse:cef')).toHaveLength(25), { timeout: 10_000, interval: 50 });
    } finally {
      await running.stop();
    }
    const cef = hec.events.filter((e) => e.sourcetype === 'lapse:cef').map((e) => e.event as string);
    expect(cef.map((line) => Number(/cn1=(\d+)/.exec(line)![1]))).toEqual(Array.from({ length: 25 }, (_, i) => i + 1));
  });
});

describe('OpenTelemetry logs over OTLP/HTTP (official exporter, local receiver)', () => {
  it('sends each event as a log record with its seq and hash as attributes', async () => {
    const sink: AuditSinkSettings = {
      name: 'otel',
      format: 'jsonl',
      transport: { type: 'otlp-http', url: otlp.url, headers: {} },
      batchSize: 10,
      checkpoints: true,
    };
    const running = exporter([sink]);
    expect(await running.exportOnce()).toBe(26);
    await running.stop();
    const records = otlp.requests.flatMap((r) => r.resourceLogs.flatMap((l) => l.scopeLogs.flatMap((s) => s.logRecords)));
    expect(records).toHaveLength(26);
    const attributes = (record: Record<string, unknown>) =>
      Object.fromEntries((record.attributes as { key: string; value: Record<string, unknown> }[]).map((a) => [a.key, Object.values(a.value)[0]]));
    expect(attributes(records[0]!)).toMatchObject({ 'lapse.audit.kind': 'event' });
    expect(Number(attributes(records[0]!)['lapse.audit.seq'])).toBe(1);
    expect((records[0]!.body as { stringValue: string }).stringValue).toMatch(/^\{"type":"event","seq":1,"hash":"[0-9a-f]{64}"/);
    expect(records[25]!.eventName).toBe('lapse.audit.checkpoint');
  });

  it('a receiver that is gone fails the delivery and keeps the cursor', async () => {
    const sink: AuditSinkSettings = {
      name: 'otel-down',
      format: 'jsonl',
      transport: { type: 'otlp-http', url: 'http://127.0.0.1:9/v1/logs', headers: {} },
      batchSize: 10,
      checkpoints: false,
    };
    const running = exporter([sink]);
    await expect(running.exportOnce()).rejects.toThrow(/OTLP export failed/);
    await running.stop();
    expect(await cursor('sink:otel-down')).toMatchObject({ seq: 0, failures: 1 });
  });
});

// The timestamp authority is openssl ts, like the other system tools the offline suite leaves out.
describe.skipIf(offline())('checkpoint witnesses', () => {
  it('an append-only file and an RFC 3161 authority (openssl ts) receive every checkpoint; openssl verifies the time-stamp', async () => {
    const witnessFile = join(dir, 'witness', 'checkpoints.jsonl');
    const tokens = join(dir, 'witness', 'tsa');
    const running = exporter(
      [],
      [
        { name: 'offsite', type: 'file', path: witnessFile },
        { name: 'tsa', type: 'tsa', url: tsa.url, dir: tokens },
      ],
    );
    expect(await running.exportOnce()).toBe(2);
    await running.stop();
    const [line] = readFileSync(witnessFile, 'utf8').trim().split('\n');
    expect(JSON.parse(line!)).toMatchObject({ type: 'checkpoint', checkpoint: { seq: 25, keyId: key.keyId } });
    const out = execFileSync(
      'openssl',
      [
        'ts',
        '-verify',
        '-data',
        join(tokens, 'checkpoint-25.json'),
        '-in',
        join(tokens, 'checkpoint-25.tsr'),
        '-CAfile',
        pki.caFile,
        '-untrusted',
        pki.tsaCert,
      ],
      { encoding: 'utf8' },
    );
    expect(out).toMatch(/Verification: OK/);
    expect(readFileSync(join(tokens, 'checkpoint-25.json'), 'utf8')).toBe(line);
  });

  it('an authority that refuses is an error, and nothing is recorded as witnessed', async () => {
    const running = exporter([], [{ name: 'tsa-down', type: 'tsa', url: `${hec.url}/not-a-tsa`, dir: join(dir, 'witness', 'none') }]);
    await expect(running.exportOnce()).rejects.toThrow(/time-stamp authority .* answered HTTP 404/);
    await running.stop();
    expect(await cursor('witness:tsa-down')).toMatchObject({ seq: 0, failures: 1 });
  });
});
