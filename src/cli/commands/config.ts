import type { Command } from 'commander';
import { EXIT } from '../../domain/errors.js';
import { resolveLocation } from '../context.js';
import { action, emit, type GlobalOptions } from '../output.js';
import { describeTargetChecks, targetCheckJson } from './target.js';

export function registerConfigCommands(program: Command): void {
  const config = program.command('config').description('the lapse.yaml configuration');
  config
    .command('validate [file]')
    .description('check a config offline: schema, secret references, policies, connector settings')
    .option('-c, --config <file>', 'config file (same as the argument)')
    .option('--check-targets', 'also connect to every target and run its privilege check (as `lapse target check`); exit 1 if one fails')
    .action(
      action(async (file: string | undefined, options: { config?: string; checkTargets?: boolean }, command: Command) => {
        const globals = command.optsWithGlobals<GlobalOptions>();
        const [{ loadConfigFile }, { builtInConnectors, targetSettingsCheck }] = await Promise.all([
          import('../../config/index.js'),
          import('../../connectors/index.js'),
        ]);
        const { configPath } = resolveLocation({ config: file ?? options.config });
        // Connector settings are checked in the same pass as the rest, each problem located.
        const connectors = builtInConnectors();
        const loaded = await loadConfigFile(configPath, process.env, { checkTarget: targetSettingsCheck(connectors) });
        const entitlements = [...loaded.targets.values()].reduce((n, t) => n + t.entitlements.size, 0);
        const summary = {
          valid: true,
          file: configPath,
          version: loaded.version,
          targets: loaded.targets.size,
          entitlements,
          policies: loaded.policies.policies.length,
          breakGlass: loaded.breakGlass.enabled,
        };
        const line = `${configPath} is valid: ${summary.targets} targets, ${entitlements} entitlements, ${summary.policies} policies, break-glass ${summary.breakGlass ? 'on' : 'off'} (version ${loaded.version.slice(0, 12)})`;
        if (!options.checkTargets) return emit(globals, summary, () => line);
        const { checkTargets } = await import('../../engine/index.js');
        const checks = await checkTargets(loaded, connectors);
        emit(globals, { ...summary, targetChecks: checks.map(targetCheckJson) }, () => `${line}\n${describeTargetChecks(checks)}`);
        return checks.every((c) => c.ok) ? EXIT.ok : EXIT.failed;
      }),
    );
}
