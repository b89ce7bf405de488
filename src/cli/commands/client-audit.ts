import type { Command } from 'commander';
import { LapseError } from '../../domain/errors.js';
import { action } from '../output.js';
import { addClientOptions, clientFor, filter, limit, oneOf, since, type ClientFlags } from './client-flags.js';
import { auditPage, type AuditEvent } from './client-resources.js';
import { show } from './client-show.js';

interface AuditFlags extends ClientFlags {
  action?: string;
  actor?: string;
  subject?: string;
  since?: string;
  until?: string;
  limit?: string;
  export?: string;
}

function eventLine(event: AuditEvent): string {
  const data = event.data === undefined || event.data === null ? '' : `  ${JSON.stringify(event.data)}`;
  return `${String(event.seq).padStart(6)}  ${event.at}  ${event.action.padEnd(24)} ${(event.actor ?? '-').padEnd(14)} ${event.subject ?? '-'}${data.length > 200 ? `${data.slice(0, 199)}…` : data}`;
}

/**
 * `lapse audit [filters]` (query the server's audit log; admins and auditors) and
 * `lapse audit --export jsonl|csv > file`. Added to the `audit` command, which also holds the
 * offline `audit verify`.
 */
export function addAuditQuery(audit: Command): Command {
  return addClientOptions(audit)
    .option('--action <action>', 'only events of this action, e.g. grant.revoked')
    .option('--actor <id>', 'only events by this principal')
    .option('--subject <id>', 'only events about this request, grant or user id')
    .option('--since <when>', 'from this long ago (1h, 7d) or this ISO-8601 time')
    .option('--until <when>', 'up to this long ago or this ISO-8601 time')
    .option('--limit <n>', 'at most this many events (1-200, default 50)')
    .option('--export <format>', 'stream everything in range as jsonl or csv to standard output (e.g. > audit.jsonl)')
    .action(
      action(async (_options: unknown, command: Command) => {
        const flags = command.optsWithGlobals<AuditFlags>();
        const format = oneOf(flags.export, ['jsonl', 'csv'] as const, '--export');
        const range = { since: since(flags.since, '--since'), until: since(flags.until, '--until') };
        const filters = { action: filter(flags.action, '--action', 128), actor: filter(flags.actor, '--actor'), subject: filter(flags.subject, '--subject') };
        const pageSize = limit(flags.limit);
        if (format && (filters.action || filters.actor || filters.subject || pageSize !== undefined)) {
          throw new LapseError('validation_failed', '--export takes only --since and --until', {
            where: '--export',
            hint: 'Export a time range, then filter the file (e.g. with jq or grep).',
          });
        }
        const client = clientFor(flags);
        if (format) {
          const body = await client.stream('/api/v1/audit/export', { query: { format, ...range } });
          for await (const chunk of body) {
            if (!process.stdout.write(chunk)) await new Promise((resolve) => process.stdout.once('drain', resolve));
          }
          return;
        }
        const page = await client.get('/api/v1/audit', auditPage, { query: { ...filters, ...range, limit: pageSize ?? 50 } });
        show(flags, page, () =>
          page.items.length === 0
            ? 'no audit events match'
            : [...page.items.map(eventLine), ...(page.nextCursor ? ['… more (narrow with --since/--action, or use --export)'] : [])].join('\n'),
        );
      }),
    );
}
