import type { Command } from 'commander';
import { registerAdminCommands } from './admin.js';
import { registerAuditCommands } from './audit.js';
import { registerNotifyCommands } from './client-notify.js';
import { registerSlackCommands } from './client-slack.js';
import { registerWebhookCommands } from './client-webhook.js';
import { registerRequestCommands } from './client-request.js';
import { registerReviewCommands } from './client-review.js';
import { registerStatusCommands } from './client-status.js';
import { registerConfigCommands } from './config.js';
import { registerDemoCommand } from './demo.js';
import { registerLoginCommands } from './login.js';
import { registerMigrateCommand } from './migrate.js';
import { registerPolicyCommands } from './policy.js';
import { registerReconcileCommand } from './reconcile.js';
import { registerServeCommand } from './serve.js';
import { registerTargetCommands } from './target.js';
import { registerVaultCommands } from './client-vault.js';
import { registerCompletionCommand } from './completion.js';
import { registerAccessReviewCommands, registerReportCommand } from './client-access-review.js';

/**
 * Every `lapse` subcommand lives in its own file in this folder and exports a `register` function;
 * this list is the only place that knows them all. Registering must stay cheap: a command loads
 * the database, config, server and auth code inside its action (`await import`), so the client
 * commands (`lapse ls`, `lapse request`...) start without them.
 */
export function registerCommands(program: Command): void {
  program.commandsGroup('Server (on the Lapse host, with its lapse.yaml and database):');
  registerServeCommand(program);
  registerMigrateCommand(program);
  registerDemoCommand(program);
  registerConfigCommands(program);
  registerPolicyCommands(program);
  registerReconcileCommand(program);
  registerTargetCommands(program);
  program.commandsGroup('Administration (on the database; admins and auditors):');
  registerAdminCommands(program);
  registerAuditCommands(program);
  // The client: talk to a running server over its API.
  program.commandsGroup('Client (talk to a running Lapse server; `lapse login` first):');
  registerLoginCommands(program);
  registerRequestCommands(program);
  registerStatusCommands(program);
  registerReviewCommands(program);
  registerNotifyCommands(program);
  registerSlackCommands(program);
  registerWebhookCommands(program);
  registerVaultCommands(program);
  registerAccessReviewCommands(program);
  registerReportCommand(program);
  program.commandsGroup('Shell:');
  registerCompletionCommand(program);
  program.helpCommand(true);
}
