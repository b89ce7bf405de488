import type { Command } from 'commander';
import { z } from 'zod';
import { LapseError } from '../../domain/errors.js';
import { parseInput } from '../../engine/index.js';
import { webhookReplayInput, webhookSubscriptionInput } from '../../domain/event-webhooks.js';
import { action } from '../output.js';
import { addClientOptions, clientFor, limit, type ClientFlags } from './client-flags.js';
import { show } from './client-show.js';

/**
 * `lapse webhook ls|add|rm|deliveries|replay`: outbound event webhooks (admins), over the API.
 * Inputs are checked here with the server's own schemas, so a typo is caught before the call.
 */

const subscription = z.looseObject({
  id: z.string().max(64),
  url: z.string().max(2048),
  description: z.string().max(200),
  events: z.array(z.string().max(64)).max(50),
  allowInsecureHttp: z.boolean(),
  createdBy: z.string().max(256),
  createdAt: z.string().max(64),
});
const delivery = z.looseObject({
  id: z.string().max(64),
  event: z.string().max(64),
  subject: z.string().max(256).nullable(),
  status: z.enum(['pending', 'sent', 'failed']),
  attempts: z.number().int(),
  replays: z.number().int(),
  lastStatus: z.number().int().nullable(),
  lastError: z.string().max(2000).nullable(),
  createdAt: z.string().max(64),
});

const subscriptionId = (value: string) => {
  if (!/^whk_[0-9a-z]{26}$/.test(value)) {
    throw new LapseError('validation_failed', `"${value.slice(0, 80)}" is not a webhook subscription id`, {
      where: '<id>',
      hint: 'Ids look like whk_…; list them with `lapse webhook ls`.',
    });
  }
  return value;
};

interface AddFlags extends ClientFlags {
  event: string[];
  description?: string;
  allowInsecureHttp?: boolean;
}

interface DeliveriesFlags extends ClientFlags {
  status?: string;
  limit?: string;
}

interface ReplayFlags extends ClientFlags {
  delivery?: string;
  from?: string;
  to?: string;
}

const collect = (value: string, previous: string[]) => [...previous, value];

export function registerWebhookCommands(program: Command): void {
  const webhook = program.command('webhook').description('outbound event webhooks, signed per Standard Webhooks (admins; docs/notifications.md)');

  addClientOptions(webhook.command('ls'))
    .description('list webhook subscriptions')
    .action(
      action(async (_options: unknown, command: Command) => {
        const flags = command.optsWithGlobals<ClientFlags>();
        const answer = await clientFor(flags).get(
          '/api/v1/webhooks',
          z.looseObject({ webhooks: z.array(subscription).max(1000), events: z.array(z.string()) }),
        );
        show(flags, answer.webhooks, () =>
          answer.webhooks.length === 0
            ? 'no webhook subscriptions (add one with `lapse webhook add <url>`)'
            : answer.webhooks
                .map((w) => `${w.id}  ${w.url}  ${w.events.length === 0 ? 'all events' : w.events.join(',')}${w.description ? `  (${w.description})` : ''}`)
                .join('\n'),
        );
      }),
    );

  addClientOptions(webhook.command('add <url>'))
    .description('subscribe a URL to lifecycle events; prints the signing secret once')
    .option('--event <name>', 'only this event (repeat for more; default: every event)', collect, [])
    .option('--description <text>', 'what receives it (shown in lists)')
    .option('--allow-insecure-http', 'allow a plain http:// URL (events and signatures travel unencrypted)')
    .action(
      action(async (url: string, _options: unknown, command: Command) => {
        const flags = command.optsWithGlobals<AddFlags>();
        const body = parseInput(
          webhookSubscriptionInput,
          {
            url,
            events: flags.event,
            ...(flags.description !== undefined ? { description: flags.description } : {}),
            allowInsecureHttp: flags.allowInsecureHttp === true,
          },
          'webhook subscription',
        );
        const answer = await clientFor(flags).post('/api/v1/webhooks', z.looseObject({ webhook: subscription, secret: z.string().max(200) }), { body });
        show(
          flags,
          answer,
          () =>
            `created ${answer.webhook.id} for ${answer.webhook.url}\nsigning secret (shown only now; give it to the receiver's Standard Webhooks verifier):\n${answer.secret}`,
        );
      }),
    );

  addClientOptions(webhook.command('rm <id>'))
    .description('delete a subscription and its deliveries')
    .action(
      action(async (id: string, _options: unknown, command: Command) => {
        const flags = command.optsWithGlobals<ClientFlags>();
        await clientFor(flags).delete('/api/v1/webhooks/{id}', { path: { id: subscriptionId(id) } });
        show(flags, { deleted: id }, () => `deleted ${id}`);
      }),
    );

  addClientOptions(webhook.command('deliveries <id>'))
    .description("a subscription's deliveries, newest first")
    .option('--status <status>', 'pending, sent or failed')
    .option('--limit <n>', 'at most this many (default 100)')
    .action(
      action(async (id: string, _options: unknown, command: Command) => {
        const flags = command.optsWithGlobals<DeliveriesFlags>();
        const status = flags.status === undefined ? undefined : z.enum(['pending', 'sent', 'failed']).safeParse(flags.status);
        if (status && !status.success) {
          throw new LapseError('validation_failed', `--status ${flags.status!.slice(0, 40)} is not a delivery status`, {
            where: '--status',
            hint: 'Use pending, sent or failed.',
          });
        }
        const n = limit(flags.limit, '--limit', 1000);
        const answer = await clientFor(flags).get('/api/v1/webhooks/{id}/deliveries', z.looseObject({ deliveries: z.array(delivery).max(1000) }), {
          path: { id: subscriptionId(id) },
          query: { ...(status?.data ? { status: status.data } : {}), ...(n ? { limit: n } : {}) },
        });
        show(flags, answer.deliveries, () =>
          answer.deliveries.length === 0
            ? 'no deliveries'
            : answer.deliveries
                .map(
                  (d) =>
                    `${d.id}  ${d.event.padEnd(20)} ${d.status.padEnd(7)} attempts ${d.attempts}${d.lastStatus ? `  HTTP ${d.lastStatus}` : ''}${d.lastError ? `  ${d.lastError}` : ''}`,
                )
                .join('\n'),
        );
      }),
    );

  addClientOptions(webhook.command('replay <id>'))
    .description('send deliveries again: one (--delivery) or a range by id (--from, --to)')
    .option('--delivery <whd_id>', 'the delivery to send again')
    .option('--from <whd_id>', 'the first delivery of a range')
    .option('--to <whd_id>', 'the last delivery of a range')
    .action(
      action(async (id: string, _options: unknown, command: Command) => {
        const flags = command.optsWithGlobals<ReplayFlags>();
        const raw = flags.delivery !== undefined ? { delivery: flags.delivery } : { from: flags.from, to: flags.to };
        if (flags.delivery !== undefined && (flags.from !== undefined || flags.to !== undefined)) {
          throw new LapseError('validation_failed', 'give --delivery, or --from and --to, not both', {
            where: '--delivery',
            hint: 'Replay one delivery or one range per call.',
          });
        }
        const body = parseInput(webhookReplayInput, raw, 'webhook replay');
        const answer = await clientFor(flags).post('/api/v1/webhooks/{id}/replay', z.looseObject({ replayed: z.array(z.string().max(64)).max(1000) }), {
          path: { id: subscriptionId(id) },
          body,
        });
        show(
          flags,
          answer,
          () => `sending again: ${answer.replayed.length} deliver${answer.replayed.length === 1 ? 'y' : 'ies'} (${answer.replayed.join(', ')})`,
        );
      }),
    );
}
