import { performance } from 'node:perf_hooks';
import type { Store } from '../store/index.js';
import { appendAuditEvent, appendAuditEvents } from './chain.js';
import { verifyAuditChain } from './verify.js';

/** Appends `count` events, one transaction each (the engine's pattern), and reports events/s. */
export async function benchAuditAppend(store: Store, count: number): Promise<{ scenario: string; count: number; p50_ms: number; p99_ms: number; max_ms: number; per_s: number }> {
  const latencies: number[] = [];
  const started = performance.now();
  for (let i = 0; i < count; i++) {
    const t0 = performance.now();
    await store.db.transaction().execute((tx) => appendAuditEvent(tx, { action: 'bench.append', actor: 'bench', subject: `s${i}`, data: { i } }));
    latencies.push(performance.now() - t0);
  }
  const wall = performance.now() - started;
  latencies.sort((a, b) => a - b);
  const at = (p: number) => Math.round(latencies[Math.min(latencies.length - 1, Math.ceil(p * latencies.length) - 1)]! * 1000) / 1000;
  return { scenario: 'audit_append', count, p50_ms: at(0.5), p99_ms: at(0.99), max_ms: at(1), per_s: Math.round((count / wall) * 1000) };
}

/** Appends `count` events in transactions of `perTransaction` (how the engine writes a batch). */
export async function benchAuditAppendBatched(store: Store, count: number, perTransaction: number): Promise<{ scenario: string; count: number; p50_ms: number; p99_ms: number; max_ms: number; per_s: number; per_transaction: number }> {
  const latencies: number[] = [];
  const started = performance.now();
  for (let done = 0; done < count; done += perTransaction) {
    const t0 = performance.now();
    const entries = Array.from({ length: Math.min(perTransaction, count - done) }, (_, i) => ({ action: 'bench.append', actor: 'bench', subject: `s${done + i}`, data: { i: done + i } }));
    await store.db.transaction().execute((tx) => appendAuditEvents(tx, entries));
    latencies.push((performance.now() - t0) / entries.length);
  }
  const wall = performance.now() - started;
  latencies.sort((a, b) => a - b);
  const at = (p: number) => Math.round(latencies[Math.min(latencies.length - 1, Math.ceil(p * latencies.length) - 1)]! * 1000) / 1000;
  return { scenario: 'audit_append_batched', count, p50_ms: at(0.5), p99_ms: at(0.99), max_ms: at(1), per_s: Math.round((count / wall) * 1000), per_transaction: perTransaction };
}

/** Verifies the whole chain and reports events/s. */
export async function benchAuditVerify(store: Store): Promise<{ scenario: string; count: number; p50_ms: number; p99_ms: number; max_ms: number; per_s: number }> {
  const started = performance.now();
  const result = await verifyAuditChain(store.db, { publicKeys: [] });
  const wall = performance.now() - started;
  if (result.problems.some((p) => p.kind !== 'checkpoint_unverified')) throw new Error(`audit chain broken during bench: ${result.problems[0]?.message}`);
  const perEvent = wall / Math.max(1, result.events);
  return { scenario: 'audit_verify', count: result.events, p50_ms: perEvent, p99_ms: perEvent, max_ms: perEvent, per_s: Math.round((result.events / wall) * 1000) };
}
