/**
 * `npm run bench`: every scenario on the embedded database (PGlite) and on the PostgreSQL server,
 * one JSON line each: scenario, backend, count, p50_ms, p99_ms, max_ms, per_s (+ extras).
 * BENCH_QUICK=1 runs smaller counts; BENCH_BACKENDS=pglite limits the backends.
 * BENCH_SECTIONS picks sections (comma list of policy, lifecycle, audit, http, connectors, notifications, risk; default all),
 * e.g. BENCH_SECTIONS=connectors npm run bench; BENCH_CONNECTORS=postgres narrows that section.
 */
import { rmSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { openStore, type Store } from '../src/store/index.js';
import { benchAuditAppend, benchAuditAppendBatched, benchAuditVerify } from './audit.js';
import { benchPolicyDecision } from './policy.js';
import { benchBurstRevocation, benchEngine, benchIsolatedRevocation, benchRequestToActive, benchWorkflowThroughput } from './lifecycle.js';
import { benchConnectors } from './connectors.js';
import { benchHttp } from './http.js';
import { benchQueuedToSmtp, benchRevocationWithStalledSmtp } from './notifications.js';
import { emitResult } from './stats.js';
import { benchRiskLookup, benchRiskPolicyDecision } from './risk.js';

const quick = process.env.BENCH_QUICK === '1';
const backends = (process.env.BENCH_BACKENDS ?? 'pglite,postgres').split(',');
const SECTIONS = ['policy', 'lifecycle', 'audit', 'http', 'connectors', 'notifications', 'risk'];
const sections = (process.env.BENCH_SECTIONS ?? SECTIONS.join(',')).split(',').map((s) => s.trim());
const unknownSections = sections.filter((s) => !SECTIONS.includes(s));
if (unknownSections.length > 0) throw new Error(`BENCH_SECTIONS: unknown section(s) ${unknownSections.join(', ')}; use ${SECTIONS.join(', ')}`);
const runs = (section: string) => sections.includes(section);
const adminUrl = process.env.LAPSE_BENCH_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

type Location = { dataDir: string } | { databaseUrl: string };

/** A fresh database for one backend: a PGlite data dir, or a PostgreSQL database created and dropped. */
async function withLocation(backend: string, run: (location: Location) => Promise<void>): Promise<void> {
  if (backend === 'pglite') {
    const dir = mkdtempSync(join(tmpdir(), 'lapse-bench-'));
    try {
      await run({ dataDir: join(dir, 'data') });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    return;
  }
  const name = `lapse_bench_${process.pid}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS "${name}"`);
  await admin.query(`CREATE DATABASE "${name}"`);
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  try {
    await run({ databaseUrl: url.toString() });
  } finally {
    await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
    await admin.end();
  }
}

async function withStore(backend: string, run: (store: Store) => Promise<void>): Promise<void> {
  await withLocation(backend, async (location) => {
    const store = await openStore(location);
    try {
      await run(store);
    } finally {
      await store.close();
    }
  });
}

if (runs('policy')) emitResult(benchPolicyDecision(quick ? 20_000 : 200_000));
if (runs('risk')) emitResult(benchRiskPolicyDecision(quick ? 20_000 : 200_000));

// Risk lookups on baselines summarising 1M requests (10k people x 100), on PostgreSQL (the target
// there: p99 <= 2 ms) and PGlite.
for (const backend of runs('risk') ? backends : []) {
  await withStore(backend, async (store) => {
    emitResult(await benchRiskLookup(store, backend, quick ? 2_000 : 10_000, 100, quick ? 500 : 5_000));
  });
}

for (const backend of runs('lifecycle') || runs('audit') ? backends : []) {
  await withStore(backend, async (store) => {
    if (runs('lifecycle')) {
      const engine = benchEngine(store);
      await engine.start();
      try {
        emitResult(await benchRequestToActive(engine, backend, quick ? 50 : 300));
        emitResult(await benchWorkflowThroughput(engine, backend, quick ? 200 : 1_000, 8));
        emitResult(await benchIsolatedRevocation(engine, backend, quick ? 50 : 200));
        emitResult(await benchBurstRevocation(engine, backend, quick ? 1_000 : 10_000));
      } finally {
        await engine.stop();
      }
    }
    if (runs('audit')) {
      emitResult({ ...(await benchAuditAppend(store, quick ? 2_000 : 10_000)), backend });
      emitResult({ ...(await benchAuditAppendBatched(store, quick ? 20_000 : 100_000, 100)), backend });
      emitResult({ ...(await benchAuditVerify(store)), backend });
    }
  });
}

if (runs('http')) {
  for (const backend of backends) {
    await withLocation(backend, async (location) => {
      const args = 'dataDir' in location ? ['--data-dir', location.dataDir] : ['--database-url', location.databaseUrl];
      for (const result of await benchHttp(backend, args, quick)) emitResult(result);
    });
  }
}

if (runs('connectors')) await benchConnectors(quick, emitResult);

for (const backend of runs('notifications') ? backends : []) {
  // Each on a fresh database: the baseline revocation run without notifications, then the same with
  // the SMTP server stalled, then a burst of queued deliveries to a live SMTP server.
  await withStore(backend, async (store) => {
    const engine = benchEngine(store);
    await engine.start();
    try {
      emitResult(await benchIsolatedRevocation(engine, backend, quick ? 50 : 200));
    } finally {
      await engine.stop();
    }
  });
  await withStore(backend, async (store) => emitResult(await benchRevocationWithStalledSmtp(store, backend, quick ? 50 : 200)));
  await withStore(backend, async (store) => emitResult(await benchQueuedToSmtp(store, backend, quick ? 200 : 1_000)));
}
