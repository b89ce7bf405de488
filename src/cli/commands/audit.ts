import type { Command } from 'commander';
import type { VerifyResult } from '../../audit/index.js';
import { PUBLIC_KEY_FILE } from '../../audit/signing-key.js';
import { EXIT } from '../../domain/errors.js';
import { addAuditQuery } from './client-audit.js';
import { addLocationOptions, openStoreAt, resolveLocation } from '../context.js';
import { action, emit, type GlobalOptions } from '../output.js';

/** The human output lists this many problems; --json has them all. */
const LISTED_PROBLEMS = 20;

const collect = (value: string, previous: string[]) => [...previous, value];

export function registerAuditCommands(program: Command): void {
  // `lapse audit [filters]` asks the server; `lapse audit verify` reads the database itself.
  const audit = addAuditQuery(program.command('audit').description('query the audit log on the server (admins, auditors), or verify its chain offline'));
  addLocationOptions(audit.command('verify'))
    .description('recompute the hash chain and check every signed checkpoint (exit 0 intact, 1 broken)')
    .option('--public-key <file>', `checkpoint public key (PEM), repeat for rotated keys; default <data-dir>/${PUBLIC_KEY_FILE}`, collect, [])
    .action(
      action(async (options: { config?: string; dataDir?: string; publicKey: string[] }, command: Command) => {
        const globals = command.optsWithGlobals<GlobalOptions>();
        const { trustedCheckpointKeys, verifyAuditChain } = await import('../../audit/index.js');
        const location = resolveLocation(options);
        // NB. A key named on the command line must exist; only the default may be absent (a log
        // with no checkpoint yet), and then every checkpoint found is reported as unverified.
        const { keys: publicKeys } = trustedCheckpointKeys({ files: options.publicKey, dataDir: location.dataDir });
        const store = await openStoreAt(location, { mustExist: true });
        try {
          const result = await verifyAuditChain(store.db, { publicKeys });
          emit(globals, result, () => describe(result, publicKeys.length === 0));
          return result.ok ? EXIT.ok : EXIT.failed;
        } finally {
          await store.close();
        }
      }),
    );
}

function describe(result: VerifyResult, noKey: boolean): string {
  const n = (value: number) => value.toLocaleString('en');
  const count = (value: number, noun: string) => `${n(value)} ${noun}${value === 1 ? '' : 's'}`;
  const checkpoint = result.lastCheckpoint ? `, last checkpoint at seq ${n(result.lastCheckpoint.seq)} (${result.lastCheckpoint.at})` : ', no checkpoint yet';
  const summary = `${count(result.events, 'event')}, ${count(result.checkpoints, 'checkpoint')}${checkpoint}`;
  if (result.ok) return `audit chain OK: ${summary}`;
  const total = result.problems.length + result.problemsOmitted;
  const lines = [`audit chain BROKEN: ${summary}; ${count(total, 'problem')}`];
  for (const p of result.problems.slice(0, LISTED_PROBLEMS)) lines.push(`  seq ${n(p.seq)}: ${p.kind}: ${p.message}`);
  if (total > LISTED_PROBLEMS) lines.push(`  … and ${n(total - LISTED_PROBLEMS)} more (--json lists them)`);
  if (noKey && result.checkpoints > 0) lines.push(`hint: no public key: pass --public-key, or keep ${PUBLIC_KEY_FILE} in the data directory`);
  return lines.join('\n');
}
