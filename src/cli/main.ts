import { Command, CommanderError } from 'commander';
import { EXIT } from '../domain/errors.js';
import { registerCommands } from './commands/index.js';
import { PACKAGE_VERSION } from './version.js';

const program = new Command('lapse')
  .description('Lapse: just-in-time privileged access broker')
  .version(PACKAGE_VERSION, '-V, --version', 'print the version of lapse')
  .option('--json', 'print machine-readable JSON instead of text')
  .showHelpAfterError()
  .exitOverride()
  .addHelpText(
    'after',
    `
Examples:
  lapse demo                                   a guided lifecycle on the embedded database, in ./.lapse-demo
  lapse serve --config lapse.yaml              run the server (portal and API on http://127.0.0.1:8080)
  lapse login https://lapse.example.com        sign in from this machine
  lapse request prod-db/read --reason "INC-123" --duration 1h --wait
  lapse ls --to-approve                        requests waiting for you
  lapse approve req_…                          approve one (never your own)

Environment:
  LAPSE_CONFIG      lapse.yaml for server and admin commands (default ./lapse.yaml; --config wins)
  LAPSE_PORT, LAPSE_HOST   where lapse serve listens (default 8080 on 127.0.0.1)
  LAPSE_SERVER, LAPSE_TOKEN   server and API token for client commands (automation; instead of lapse login)
  LAPSE_CONFIG_DIR  where lapse login keeps credentials (default $XDG_CONFIG_HOME/lapse or ~/.config/lapse)
  LAPSE_DEBUG=1     print the stack of an internal error

Exit codes:
  0 done · 1 denied or a check failed · 2 usage · 3 not found · 4 conflict with the current state
  5 unavailable (server, target, ticket system) · 6 not signed in, not allowed or second factor needed · 70 bug

Every command has --help; docs/cli.md has the details.`,
  );

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
