import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { PUBLIC_KEY_FILE, readPublicKey, verifyAuditChain } from '../../audit/index.js';
import { EXIT } from '../../domain/errors.js';
import { addLocationOptions, openStoreAt, resolveLocation } from '../context.js';
import { action, emit, type GlobalOptions } from '../output.js';

export function registerAuditCommands(program: Command): void {
  const audit = program.command('audit').description('the tamper-evident audit log');
  addLocationOptions(audit.command('verify'))
    .description('recompute the hash chain and check every signed checkpoint')
    .option('--public-key <file>', `checkpoint public key (PEM); default <data-dir>/${PUBLIC_KEY_FILE}`)
    .action(
      action(async (options: { config?: string; dataDir?: string; publicKey?: string }, command: Command) => {
        const globals = command.optsWithGlobals<GlobalOptions>();
        const location = resolveLocation(options);
        const keyPath = options.publicKey ?? join(location.dataDir, PUBLIC_KEY_FILE);
        const publicKeys = existsSync(keyPath) ? [readPublicKey(keyPath)] : [];
        const store = await openStoreAt(location, { mustExist: true });
        try {
          const result = await verifyAuditChain(store.db, { publicKeys });
          emit(globals, result, () => {
            const checkpoint = result.lastCheckpoint ? `, last checkpoint at seq ${result.lastCheckpoint.seq} (${result.lastCheckpoint.at})` : ', no checkpoint yet';
            const summary = `${result.events.toLocaleString('en')} events, ${result.checkpoints} checkpoints${checkpoint}`;
            if (result.ok) return `audit chain OK: ${summary}`;
            return [`audit chain BROKEN: ${summary}`, ...result.problems.map((p) => `  seq ${p.seq}: ${p.kind}: ${p.message}`)].join('\n');
          });
          return result.ok ? EXIT.ok : EXIT.failed;
        } finally {
          await store.close();
        }
      }),
    );
}
