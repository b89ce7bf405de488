import type { Command } from 'commander';
import { addLocationOptions, resolveLocation } from '../context.js';
import { action } from '../output.js';

/** `lapse demo`: the guided lifecycle in ../demo-walkthrough.ts, on the example config by default. */
export function registerDemoCommand(program: Command): void {
  addLocationOptions(program.command('demo'))
    .description('run a short guided lifecycle on the example config (noop targets) and verify the audit chain')
    .action(
      action(async (options: { config?: string; dataDir?: string }) => {
        const { runDemo } = await import('../demo-walkthrough.js');
        return runDemo(resolveLocation({ config: 'examples/lapse.yaml', ...options }));
      }),
    );
}
