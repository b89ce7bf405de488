import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { action } from '../output.js';

/** Where the demo keeps its database and keys unless --data-dir says otherwise. */
export const DEMO_DATA_DIR = '.lapse-demo';

/** The example config shipped in the package (src/ and dist/ are both two levels below it), so `lapse demo` works in any directory. */
export const PACKAGED_EXAMPLE = fileURLToPath(new URL('../../../examples/lapse.yaml', import.meta.url));

/**
 * `lapse demo`: the guided lifecycle in ../demo-walkthrough.ts, on the example config by default.
 * NB. It always uses an embedded database in its own directory: LAPSE_DATA_DIR and DATABASE_URL
 * name the operator's server, which must not start with the demo's users and audit events.
 */
export function registerDemoCommand(program: Command): void {
  program
    .command('demo')
    .description(`run a short guided lifecycle on the example config (noop targets) and verify the audit chain, in ./${DEMO_DATA_DIR}`)
    .option('-c, --config <file>', 'lapse.yaml to use (default: the example shipped with Lapse, examples/lapse.yaml)')
    .option('--data-dir <dir>', `where the demo keeps its embedded database (default ./${DEMO_DATA_DIR}; never LAPSE_DATA_DIR or DATABASE_URL)`)
    .action(
      action(async (options: { config?: string; dataDir?: string }) => {
        const { runDemo } = await import('../demo-walkthrough.js');
        return runDemo({
          configPath: options.config ? resolve(options.config) : PACKAGED_EXAMPLE,
          dataDir: resolve(options.dataDir ?? DEMO_DATA_DIR),
          databaseUrl: undefined,
        });
      }),
    );
}
