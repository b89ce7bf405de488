import type { Command } from 'commander';
import type { AgainstResult, VerifyResult, WitnessProblem } from '../../audit/index.js';
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
    .option(
      '--witness <file>',
      'a checkpoint witness file or JSON-lines sink copy: fail if the database holds fewer or different checkpoints or events than it saw (repeatable)',
      collect,
      [],
    )
    .option('--against <file>', 'a JSON-lines export: prove it complete and untampered against the signed checkpoints (repeatable)', collect, [])
    .action(
      action(async (options: { config?: string; dataDir?: string; publicKey: string[]; witness: string[]; against: string[] }, command: Command) => {
        const globals = command.optsWithGlobals<GlobalOptions>();
        const { checkExportAgainst, checkWitness, readExportCopy, trustedCheckpointKeys, verifyAuditChain } = await import('../../audit/index.js');
        const location = resolveLocation(options);
        // NB. A key named on the command line must exist; only the default may be absent (a log
        // with no checkpoint yet), and then every checkpoint found is reported as unverified.
        const { keys: publicKeys } = trustedCheckpointKeys({ files: options.publicKey, dataDir: location.dataDir });
        const store = await openStoreAt(location, { mustExist: true });
        try {
          const chain = await verifyAuditChain(store.db, { publicKeys });
          const witnesses = [];
          for (const file of options.witness) witnesses.push({ source: file, problems: await checkWitness(store.db, await readExportCopy(file), publicKeys) });
          const exports = [];
          for (const file of options.against) exports.push({ source: file, ...(await checkExportAgainst(store.db, await readExportCopy(file), publicKeys)) });
          const ok = chain.ok && witnesses.every((w) => w.problems.length === 0) && exports.every((e) => e.problems.length === 0);
          const result: VerifyOutput = { ...chain, ok, chainOk: chain.ok, witnesses, exports };
          emit(globals, result, () => [describe(chain, publicKeys.length === 0), ...describeCopies(result)].join('\n'));
          return ok ? EXIT.ok : EXIT.failed;
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

interface VerifyOutput extends VerifyResult {
  /** The chain alone (ok also needs every witness and export to agree). */
  readonly chainOk: boolean;
  readonly witnesses: { source: string; problems: WitnessProblem[] }[];
  readonly exports: ({ source: string } & AgainstResult)[];
}

function describeCopies(result: VerifyOutput): string[] {
  const lines: string[] = [];
  const list = (problems: readonly WitnessProblem[]) => {
    for (const p of problems.slice(0, LISTED_PROBLEMS)) lines.push(`  seq ${p.seq.toLocaleString('en')}: ${p.kind}: ${p.message}`);
    if (problems.length > LISTED_PROBLEMS) lines.push(`  … and ${problems.length - LISTED_PROBLEMS} more (--json lists them)`);
  };
  for (const w of result.witnesses) {
    lines.push(
      w.problems.length === 0
        ? `witness ${w.source}: OK (the database holds everything it saw)`
        : `witness ${w.source}: DISAGREES: ${w.problems.length} problem(s)`,
    );
    list(w.problems);
  }
  for (const e of result.exports) {
    lines.push(
      e.problems.length === 0
        ? `export ${e.source}: OK: events ${e.first}..${e.last} complete, proven untampered through seq ${e.provenThrough} by a signed checkpoint`
        : `export ${e.source}: NOT PROVEN: ${e.problems.length} problem(s)`,
    );
    list(e.problems);
  }
  return lines;
}
