import type { Command } from 'commander';
import { EXIT, LapseError } from '../../domain/errors.js';
import { NAME_PATTERN } from '../../domain/input-schemas.js';
import type { TargetCheck } from '../../engine/index.js';
import { resolveLocation } from '../context.js';
import { action, emit, type GlobalOptions } from '../output.js';
import { shown } from './reconcile.js';

/**
 * `lapse target check [target]`: connects to each target (or one) with the config's settings and
 * runs its connector's privilege check, straight from this machine (no server, no database).
 * Exit codes: 0 every target passed; 1 a target failed (the output names what is missing).
 */
export function registerTargetCommands(program: Command): void {
  const target = program.command('target').description('the systems Lapse provisions access in');
  target
    .command('check [target]')
    .description('check that Lapse can reach each target with the privileges it needs (exit 0 all pass, 1 a target fails, naming what is missing)')
    .option('-c, --config <file>', 'lapse.yaml to use (env LAPSE_CONFIG, default ./lapse.yaml)')
    .action(
      action(async (name: string | undefined, options: { config?: string }, command: Command) => {
        const globals = command.optsWithGlobals<GlobalOptions>();
        if (name !== undefined && !NAME_PATTERN.test(name)) {
          throw new LapseError('validation_failed', `"${name.slice(0, 80)}" is not a target name`, {
            where: 'target',
            hint: 'Target names are lower-case letters, digits, "_", "." and "-".',
          });
        }
        const [{ loadConfigFile }, { builtInConnectors }, { checkTargets }] = await Promise.all([
          import('../../config/index.js'),
          import('../../connectors/index.js'),
          import('../../engine/index.js'),
        ]);
        const { configPath } = resolveLocation(options);
        const config = await loadConfigFile(configPath);
        const results = await checkTargets(config, builtInConnectors(), { target: name });
        emit(globals, { ok: results.every((r) => r.ok), targets: results.map(targetCheckJson) }, () => describeTargetChecks(results));
        return results.every((r) => r.ok) ? EXIT.ok : EXIT.failed;
      }),
    );
}

export function targetCheckJson(check: TargetCheck) {
  return { ...check, checkedAt: check.checkedAt.toISOString() };
}

/** One line per target: "ok" or "FAILED" with what is missing. */
export function describeTargetChecks(results: readonly TargetCheck[]): string {
  if (results.length === 0) return 'no targets to check';
  const lines = results.map((r) =>
    r.ok ? `ok      ${r.target} (${r.connector}), ${r.durationMs} ms` : `FAILED  ${r.target} (${r.connector}): ${shown(r.problem ?? '')}`,
  );
  const failed = results.filter((r) => !r.ok).length;
  lines.push(failed === 0 ? `${results.length} target(s) passed` : `${failed} of ${results.length} target(s) failed`);
  return lines.join('\n');
}
