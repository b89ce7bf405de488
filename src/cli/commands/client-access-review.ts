import type { Command } from 'commander';
import { z } from 'zod';
import { LapseError } from '../../domain/errors.js';
import { reviewCampaignId, reviewItemId } from '../../domain/access-review.js';
import { action } from '../output.js';
import { addClientOptions, clientFor, text, type ClientFlags } from './client-flags.js';
import { show } from './client-show.js';

/** `lapse review ls|decide|close`: access reviews over the API (docs/reviews.md). */

const itemSchema = z.looseObject({
  id: z.string(),
  campaignId: z.string(),
  kind: z.string(),
  principalId: z.string(),
  target: z.string(),
  entitlement: z.string(),
  highRisk: z.boolean(),
  evidence: z.record(z.string(), z.unknown()),
  decision: z.string().nullable(),
  outcome: z.string(),
  outcomeDetail: z.record(z.string(), z.unknown()),
});
const campaignSchema = z.looseObject({
  id: z.string(),
  name: z.string(),
  status: z.string(),
  deadline: z.string(),
  total: z.number().optional(),
  decided: z.number().optional(),
  overdue: z.boolean().optional(),
  closedBy: z.string().nullable(),
});
type Item = z.infer<typeof itemSchema>;

const usage = (message: string, where: string, hint?: string) => new LapseError('validation_failed', message, { where, ...(hint ? { hint } : {}) });

function parsed<T>(schema: z.ZodType<T>, value: string, where: string, hint: string): T {
  const result = schema.safeParse(value);
  if (!result.success) throw usage(`"${value.slice(0, 80)}" is not valid for ${where}`, where, hint);
  return result.data;
}

function describeItem(item: Item): string {
  const e = item.evidence;
  const use =
    item.kind === 'standing' ? `standing account ${String(e.account)}` : `${String(e.uses ?? 0)} use(s), last ${e.lastUse ? String(e.lastUse) : 'never'}`;
  const decided = item.decision ? ` -> ${item.decision} (${item.outcome})` : '';
  return `${item.id}  ${item.principalId}  ${item.target}/${item.entitlement}  ${item.kind}${item.highRisk ? ' HIGH-RISK' : ''}  ${use}${decided}`;
}

interface LsFlags extends ClientFlags {
  campaign?: string;
  campaigns?: boolean;
}
interface DecideFlags extends ClientFlags {
  keep?: boolean;
  remove?: boolean;
  unsure?: boolean;
  justification?: string;
}

export function registerAccessReviewCommands(program: Command): void {
  const review = program.command('review').description('access reviews: your queue, decisions, closing campaigns (docs/reviews.md)');

  addClientOptions(review.command('ls'))
    .description('your review queue (undecided items you review); --campaigns lists campaigns, --campaign <id> one campaign in full (admins and auditors)')
    .option('--campaign <id>', 'a campaign id (rvc_…)')
    .option('--campaigns', 'list campaigns with progress and overdue ones')
    .action(
      action(async (_options: unknown, command: Command) => {
        const flags = command.optsWithGlobals<LsFlags>();
        const client = clientFor(flags);
        const hint = 'Campaign ids look like rvc_…; `lapse review ls --campaigns` lists them.';
        if (flags.campaigns) {
          const answer = await client.get('/api/v1/reviews/campaigns', z.looseObject({ campaigns: z.array(campaignSchema) }), { query: { limit: 100 } });
          show(flags, answer, () =>
            answer.campaigns.length === 0
              ? 'no campaigns'
              : answer.campaigns
                  .map(
                    (c) => `${c.id}  ${c.name}  ${c.status}  ${c.decided ?? 0}/${c.total ?? 0} decided  deadline ${c.deadline}${c.overdue ? '  OVERDUE' : ''}`,
                  )
                  .join('\n'),
          );
          return;
        }
        if (flags.campaign !== undefined) {
          const id = parsed(reviewCampaignId, flags.campaign, '--campaign', hint);
          const answer = await client.get('/api/v1/reviews/campaigns/{id}', z.looseObject({ campaign: campaignSchema, items: z.array(itemSchema) }), {
            path: { id },
          });
          show(flags, answer, () =>
            [`${answer.campaign.name} (${answer.campaign.status}), deadline ${answer.campaign.deadline}`, ...answer.items.map(describeItem)].join('\n'),
          );
          return;
        }
        const answer = await client.get('/api/v1/reviews/queue', z.looseObject({ items: z.array(itemSchema) }), { query: { limit: 200 } });
        show(flags, answer, () => (answer.items.length === 0 ? 'nothing to review' : answer.items.map(describeItem).join('\n')));
      }),
    );

  addClientOptions(review.command('decide <item-ids...>'))
    .description('decide one or more items with one decision and one justification (all or nothing; never your own access)')
    .option('--keep', 'the person keeps the access')
    .option('--remove', 'remove it: standing access at the target now; eligibility as a proposed config change')
    .option('--unsure', 'flag it for an admin')
    .option('--justification <text>', 'why (required to keep high-risk access; at most 2000 characters)')
    .action(
      action(async (refs: string[], _options: unknown, command: Command) => {
        const flags = command.optsWithGlobals<DecideFlags>();
        const chosen = (['keep', 'remove', 'unsure'] as const).filter((d) => flags[d]);
        if (chosen.length !== 1)
          throw usage(
            'say exactly one of --keep, --remove or --unsure',
            '--keep|--remove|--unsure',
            'e.g. lapse review decide rvi_… --keep --justification "on call"',
          );
        if (refs.length > 500) throw usage(`${refs.length} items; at most 500 at once`, '<item-ids...>');
        const items = refs.map((ref) => parsed(reviewItemId, ref, '<item-ids...>', 'Item ids look like rvi_…; `lapse review ls` lists your queue.'));
        const justification = text(flags.justification, '--justification', 2000, false) ?? '';
        const client = clientFor(flags);
        const answer = await client.post('/api/v1/reviews/decisions', z.looseObject({ items: z.array(itemSchema) }), {
          body: { items, decision: chosen[0]!, justification },
        });
        show(flags, answer, () =>
          answer.items
            .map((i) => `${describeItem(i)}${typeof i.outcomeDetail.change === 'string' ? `\n  proposed change: ${i.outcomeDetail.change}` : ''}`)
            .join('\n'),
        );
      }),
    );

  addClientOptions(review.command('close <campaign-id>'))
    .description("close a campaign now (admins): unanswered items get the campaign's default")
    .action(
      action(async (ref: string, _options: unknown, command: Command) => {
        const flags = command.optsWithGlobals<ClientFlags>();
        const id = parsed(reviewCampaignId, ref, '<campaign-id>', 'Campaign ids look like rvc_…; `lapse review ls --campaigns` lists them.');
        const client = clientFor(flags);
        const answer = await client.post(
          '/api/v1/reviews/campaigns/{id}/close',
          z.looseObject({ campaign: campaignSchema, defaulted: z.number(), outcomes: z.record(z.string(), z.number()) }),
          { path: { id } },
        );
        show(
          flags,
          answer,
          () =>
            `closed ${answer.campaign.name}: ${answer.defaulted} unanswered item(s) got the default; outcomes ${Object.entries(answer.outcomes)
              .map(([k, v]) => `${k} ${v}`)
              .join(', ')}`,
        );
      }),
    );
}

const REPORTS = ['access-reviews', 'privileged-activity', 'break-glass', 'standing-access', 'config-changes'] as const;
const DAY_OR_INSTANT = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?(Z|[+-]\d{2}:\d{2}))?$/;

interface ReportFlags extends ClientFlags {
  from: string;
  to: string;
  format?: string;
  out?: string;
}

/** `lapse report <kind> --from --to [--format csv|pdf] [--out file]` (admins and auditors; docs/compliance.md). */
export function registerReportCommand(program: Command): void {
  addClientOptions(program.command('report <kind>'))
    .description(`compliance evidence over a period as CSV or PDF (admins and auditors): ${REPORTS.join(', ')}`)
    .requiredOption('--from <date>', 'start of the period (2026-07-01 or an ISO 8601 instant)')
    .requiredOption('--to <date>', 'end of the period, exclusive')
    .option('--format <format>', 'csv (default) or pdf')
    .option('--out <file>', 'write to this file instead of standard output (PDF needs it unless piped)')
    .action(
      action(async (kind: string, _options: unknown, command: Command) => {
        const flags = command.optsWithGlobals<ReportFlags>();
        if (!(REPORTS as readonly string[]).includes(kind))
          throw usage(`"${kind.slice(0, 40)}" is not a report`, '<kind>', `The reports are ${REPORTS.join(', ')}.`);
        for (const [where, value] of [
          ['--from', flags.from],
          ['--to', flags.to],
        ] as const) {
          if (!DAY_OR_INSTANT.test(value))
            throw usage(
              `${where} ${value.slice(0, 40)} is not a date`,
              where,
              'Write a date (2026-07-01) or an instant with its offset (2026-07-01T12:00:00Z).',
            );
        }
        const format = flags.format ?? 'csv';
        if (format !== 'csv' && format !== 'pdf') throw usage('--format must be csv or pdf', '--format');
        if (format === 'pdf' && !flags.out && process.stdout.isTTY)
          throw usage('a PDF is not for the terminal', '--out', 'Add --out report.pdf (or pipe the output).');
        const client = clientFor(flags);
        const body = await client.stream('/api/v1/reports/{kind}', {
          path: { kind },
          query: { from: flags.from, to: flags.to, format },
        });
        const { createWriteStream } = await import('node:fs');
        const out: NodeJS.WritableStream = flags.out ? createWriteStream(flags.out, { mode: 0o600 }) : process.stdout;
        for await (const chunk of body) {
          if (!out.write(chunk)) await new Promise<void>((resolve) => out.once('drain', () => resolve()));
        }
        if (flags.out) await new Promise<void>((resolve, reject) => out.once('error', reject).end(() => resolve()));
      }),
    );
}
