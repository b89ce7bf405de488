/**
 * Child of test/audit-export-crash.test.ts: exports the audit chain of a data directory to a
 * JSON-lines file in small batches, slowly, until it is killed (kill -9).
 */
import { AuditExporter } from '../../src/audit/exporter.js';
import { openStore } from '../../src/store/index.js';

const [dataDir, path] = process.argv.slice(2) as [string, string];
const store = await openStore({ dataDir });
const exporter = new AuditExporter(
  store.db,
  {
    sinks: [{ name: 'crash', format: 'jsonl', transport: { type: 'file', path, maxBytes: 1 << 30, keep: 1 }, batchSize: 50, checkpoints: true }],
    witnesses: [],
    pollIntervalMs: 10,
    timeoutMs: 5_000,
    backoffMinMs: 10,
    backoffMaxMs: 100,
  },
  { hostname: 'crash', productVersion: '0', onError: () => {} },
);
exporter.start();
process.stdout.write('exporting\n');
