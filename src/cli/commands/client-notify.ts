import type { Command } from 'commander';
import { z } from 'zod';
import { LapseError } from '../../domain/errors.js';
import { NAME_PATTERN } from '../../domain/input-schemas.js';
import { action } from '../output.js';
import { addClientOptions, clientFor, type ClientFlags } from './client-flags.js';
import { show } from './client-show.js';

/** `lapse notify test <channel>`: a test message over a notification channel, sent by the server (admins). */

const testAnswer = z.looseObject({ channel: z.string().max(63), to: z.string().max(320), id: z.string().max(64) });

interface NotifyFlags extends ClientFlags {
  to?: string;
}

export function registerNotifyCommands(program: Command): void {
  const notify = program.command('notify').description('notification channels (docs/notifications.md)');
  addClientOptions(notify.command('test <channel>'))
    .description('send a test message over a channel now, to your own address on record or --to (admins)')
    .option('--to <address>', 'send it to this email address instead of yours')
    .action(
      action(async (channel: string, _options: unknown, command: Command) => {
        const flags = command.optsWithGlobals<NotifyFlags>();
        if (!NAME_PATTERN.test(channel) || channel.length > 63) {
          throw new LapseError('validation_failed', `"${channel.slice(0, 80)}" is not a channel name`, {
            where: '<channel>',
            hint: 'Channel names are the keys under notifications.channels in lapse.yaml.',
          });
        }
        if (flags.to !== undefined && !z.email().max(320).safeParse(flags.to).success) {
          throw new LapseError('validation_failed', `"${flags.to.slice(0, 80)}" is not an email address`, {
            where: '--to',
            hint: 'Write e.g. --to you@example.com.',
          });
        }
        const answer = await clientFor(flags).post('/api/v1/notifications/test', testAnswer, { body: { channel, ...(flags.to ? { to: flags.to } : {}) } });
        show(flags, answer, () => `sent a test message over ${answer.channel} to ${answer.to} (Message-ID <${answer.id}@lapse>)`);
      }),
    );
}
