/** One benchmark result line: the format scripts read (`npm run bench | jq`). */
export interface BenchResult {
  readonly scenario: string;
  readonly backend: string;
  readonly count: number;
  readonly p50_ms: number;
  readonly p99_ms: number;
  readonly max_ms: number;
  readonly per_s: number;
  readonly [extra: string]: unknown;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  const index = Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1);
  return sorted[Math.max(0, index)]!;
}

const round = (value: number) => Math.round(value * 1000) / 1000;

/** Summarises latencies (ms) and a wall-clock span (ms) into a result line. */
export function summarise(scenario: string, backend: string, latenciesMs: number[], wallMs: number, extra: Record<string, unknown> = {}): BenchResult {
  const sorted = [...latenciesMs].sort((a, b) => a - b);
  return {
    scenario,
    backend,
    count: sorted.length,
    p50_ms: round(percentile(sorted, 50)),
    p99_ms: round(percentile(sorted, 99)),
    max_ms: round(sorted.at(-1) ?? 0),
    per_s: round(wallMs > 0 ? (sorted.length / wallMs) * 1000 : 0),
    ...extra,
  };
}

export function emitResult(result: BenchResult): void {
  process.stdout.write(`${JSON.stringify(result)}\n`);
}
