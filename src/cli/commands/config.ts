import type { Command } from 'commander';
import { resolveLocation } from '../context.js';
import { action, emit, type GlobalOptions } from '../output.js';

export function registerConfigCommands(program: Command): void {
  const config = program.command('config').description('the lapse.yaml configuration');
  config
    .command('validate [file]')
    .description('check a config offline: schema, secret references, policies, connector settings')
    .option('-c, --config <file>', 'config file (same as the argument)')
    .action(
      action(async (file: string | undefined, options: { config?: string }, command: Command) => {
        const globals = command.optsWithGlobals<GlobalOptions>();
        const [{ loadConfigFile }, { builtInConnectors, targetSettingsCheck }] = await Promise.all([import('../../config/index.js'), import('../../connectors/index.js')]);
        const { configPath } = resolveLocation({ config: file ?? options.config });
        // Connector settings are checked in the same pass as the rest, each problem located.
        const loaded = await loadConfigFile(configPath, process.env, { checkTarget: targetSettingsCheck(builtInConnectors()) });
        const entitlements = [...loaded.targets.values()].reduce((n, t) => n + t.entitlements.size, 0);
        const summary = { valid: true, file: configPath, version: loaded.version, targets: loaded.targets.size, entitlements, policies: loaded.policies.policies.length, breakGlass: loaded.breakGlass.enabled };
        emit(globals, summary, () => `${configPath} is valid: ${summary.targets} targets, ${entitlements} entitlements, ${summary.policies} policies, break-glass ${summary.breakGlass ? 'on' : 'off'} (version ${loaded.version.slice(0, 12)})`);
      }),
    );
}
