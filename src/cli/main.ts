import { Command, CommanderError } from 'commander';
import { EXIT } from '../domain/errors.js';
import { registerCommands } from './commands/index.js';
import { PACKAGE_VERSION } from './version.js';

const program = new Command('lapse')
  .description('Lapse: just-in-time privileged access broker')
  .version(PACKAGE_VERSION, '-V, --version', 'print the version of lapse')
  .option('--json', 'print machine-readable JSON instead of text')
  .showHelpAfterError()
  .exitOverride();

registerCommands(program);

try {
  await program.parseAsync(process.argv);
} catch (error) {
  if (error instanceof CommanderError) {
    // --help and --version end here too, with exit code 0.
    process.exitCode = error.exitCode === 0 ? EXIT.ok : EXIT.usage;
  } else {
    throw error;
  }
}
