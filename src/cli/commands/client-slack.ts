import type { Command } from 'commander';
import { z } from 'zod';
import { LapseError } from '../../domain/errors.js';
import { action } from '../output.js';
import { addClientOptions, clientFor, type ClientFlags } from './client-flags.js';
import { show } from './client-show.js';

/**
 * `lapse slack link-code` (a person's one-time code to send to the Slack app) and
 * `lapse slack link <user> <slack-user-id>` / `--unlink` (admins). Never matched by email.
 */

const codeAnswer = z.looseObject({ code: z.string().max(32), expiresAt: z.string().max(40), instructions: z.string().max(300) });
const linkAnswer = z.looseObject({ user: z.string().max(128), slackUserId: z.string().max(32).nullable() });

interface LinkFlags extends ClientFlags {
  unlink?: boolean;
}

export function registerSlackCommands(program: Command): void {
  const slack = program.command('slack').description('link Slack accounts (docs/notifications.md#slack)');
  addClientOptions(slack.command('link-code'))
    .description('a one-time code (10 minutes) that links your Slack account: send /lapse link CODE in Slack')
    .action(
      action(async (_options: unknown, command: Command) => {
        const flags = command.optsWithGlobals<ClientFlags>();
        const answer = await clientFor(flags).post('/api/v1/me/slack/link-code', codeAnswer);
        show(flags, answer, () => answer.instructions);
      }),
    );
  addClientOptions(slack.command('link <user> [slack-user-id]'))
    .description("link a person's Slack member id (U…, from their Slack profile), or --unlink them (admins)")
    .option('--unlink', 'remove the link instead')
    .action(
      action(async (user: string, slackUserId: string | undefined, _options: unknown, command: Command) => {
        const flags = command.optsWithGlobals<LinkFlags>();
        if (flags.unlink ? slackUserId !== undefined : !slackUserId) {
          throw new LapseError('validation_failed', flags.unlink ? 'give no Slack user id with --unlink' : 'give the Slack member id to link, e.g. U0123ABCD', {
            where: '<slack-user-id>',
            hint: 'lapse slack link dana U0123ABCD, or lapse slack link dana --unlink',
          });
        }
        const answer = await clientFor(flags).post('/api/v1/integrations/slack/links', linkAnswer, {
          body: { user, slackUserId: flags.unlink ? null : slackUserId! },
        });
        show(flags, answer, () => (answer.slackUserId ? `linked ${answer.user} to Slack user ${answer.slackUserId}` : `unlinked ${answer.user} from Slack`));
      }),
    );
}
