import { performance } from 'node:perf_hooks';
import type { Store } from '../src/store/index.js';
import { appendAuditEvents, verifyAuditChain, type AuditEntry } from '../src/audit/index.js';

/** One line of `npm run bench` (see bench/README.md): latencies are per event. */
export interface AuditBenchResult {
  readonly scenario: string;
  readonly count: number;
  readonly seconds: number;
  readonly p50_ms: number;
  readonly p99_ms: number;
  readonly max_ms: number;
  readonly per_s: number;
}

const entry = (i: number): AuditEntry => ({ action: 'bench.append', actor: 'bench', subject: `s${i}`, data: { i } });

/** Appends `count` events, one transaction each: the worst case, bound by the commit. */
export function benchAuditAppend(store: Store, count: number): Promise<AuditBenchResult> {
  return appendInTransactions(store, 'audit_append', count, 1);
}

/** Appends `count` events in transactions of `perTransaction` (how the engine writes a burst). */
export async function benchAuditAppendBatched(store: Store, count: number, perTransaction: number): Promise<AuditBenchResult & { per_transaction: number }> {
  return { ...(await appendInTransactions(store, 'audit_append_batched', count, perTransaction)), per_transaction: perTransaction };
}

async function appendInTransactions(store: Store, scenario: string, count: number, perTransaction: number): Promise<AuditBenchResult> {
  const latencies: number[] = [];
  const started = performance.now();
  for (let done = 0; done < count; done += perTransaction) {
    const entries = Array.from({ length: Math.min(perTransaction, count - done) }, (_, i) => entry(done + i));
    const t0 = performance.now();
    await store.db.transaction().execute((tx) => appendAuditEvents(tx, entries));
    latencies.push((performance.now() - t0) / entries.length);
  }
  const seconds = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  const at = (p: number) => round(latencies[Math.min(latencies.length - 1, Math.ceil(p * latencies.length) - 1)] ?? 0);
  return { scenario, count, seconds: round(seconds), p50_ms: at(0.5), p99_ms: at(0.99), max_ms: at(1), per_s: Math.round(count / seconds) };
}

/** Verifies the whole chain once and reports events/s (no per-event latencies: one pass). */
export async function benchAuditVerify(store: Store): Promise<AuditBenchResult> {
  const started = performance.now();
  const result = await verifyAuditChain(store.db, { publicKeys: [] });
  const seconds = (performance.now() - started) / 1000;
  // Checkpoints are signed by whatever key the run used; the chain itself must be intact.
  const broken = result.problems.find((p) => p.kind !== 'checkpoint_unverified');
  if (broken) throw new Error(`audit chain broken during bench: seq ${broken.seq}: ${broken.message}`);
  const perEvent = round((seconds * 1000) / Math.max(1, result.events));
  return {
    scenario: 'audit_verify',
    count: result.events,
    seconds: round(seconds),
    p50_ms: perEvent,
    p99_ms: perEvent,
    max_ms: perEvent,
    per_s: Math.round(result.events / seconds),
  };
}

const round = (value: number) => Math.round(value * 1000) / 1000;
