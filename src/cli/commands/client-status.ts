import type { Command } from 'commander';
import { formatDuration } from '../../domain/duration.js';
import { LapseError } from '../../domain/errors.js';
import { GRANT_STATUSES } from '../../domain/grant.js';
import { REQUEST_STATUSES } from '../../domain/request.js';
import { action } from '../output.js';
import { addClientOptions, clientFor, limit, oneOf, requestOrGrantId, type ClientFlags } from './client-flags.js';
import {
  describeGrant,
  describeRequest,
  grantAnswer,
  grantPage,
  relative,
  requestDetail,
  requestPage,
  type LapseGrant,
  type LapseRequest,
  type RequestDetail,
} from './client-resources.js';
import { show } from './client-show.js';

function describeDetail(detail: RequestDetail): string {
  const { request, grant, reviews, timeline } = detail;
  const lines = [
    `request ${request.id} (${request.kind})`,
    `  ${request.principal.id} asks ${request.target}/${request.entitlement} for ${formatDuration(request.durationMs)}`,
    `  reason: ${request.reason}${request.ticket ? `  ticket: ${request.ticket}` : ''}`,
    `  status: ${request.status}${request.policy ? ` (policy ${request.policy})` : ''}`,
    ...describeRequest(request).split('\n').slice(1),
  ];
  if (reviews.length > 0) {
    lines.push('reviews:');
    for (const review of reviews) lines.push(`  ${review.createdAt}  ${review.reviewerId} ${review.decision}${review.comment ? `: ${review.comment}` : ''}`);
  }
  if (grant)
    lines.push(
      'grant:',
      ...describeGrant(grant)
        .split('\n')
        .map((line) => `  ${line}`),
    );
  if (timeline.length > 0) {
    lines.push('timeline:');
    for (const entry of timeline) lines.push(`  ${entry.at}  ${entry.action}${entry.actor ? `  by ${entry.actor}` : ''}`);
  }
  return lines.join('\n');
}

interface ListFlags extends ClientFlags {
  toApprove?: boolean;
  breakGlass?: boolean;
  all?: boolean;
  status?: string;
  limit?: string;
  cursor?: string;
}

const CURSOR = /^[A-Za-z0-9_-]{1,100}$/;

function requestLine(request: LapseRequest): string {
  const extra = request.status === 'pending' && request.pendingUntil ? `  times out ${relative(request.pendingUntil)}` : '';
  return `${request.id}  ${request.principal.id.padEnd(12)} ${`${request.target}/${request.entitlement}`.padEnd(28)} ${formatDuration(request.durationMs).padEnd(6)} ${request.status}${extra}`;
}

function grantLine(grant: LapseGrant): string {
  const left = grant.status === 'active' && grant.expiresAt ? `  expires ${relative(grant.expiresAt)}` : '';
  return `${grant.id}  ${grant.principalId.padEnd(12)} ${`${grant.target}/${grant.entitlement}`.padEnd(28)} ${grant.status}${grant.breakGlass ? ' (break-glass)' : ''}${left}${grant.credentialsWaiting ? '  credentials waiting' : ''}`;
}

/** A titled list; `next` is the cursor of the next page (shown as the flag to pass), `true` when there is more but no single cursor to give. */
function section(title: string, lines: string[], next: string | boolean | null | undefined): string[] {
  if (lines.length === 0) return [`${title}: none`];
  const more =
    typeof next === 'string'
      ? [`  … more: repeat with --cursor ${next}`]
      : next
        ? ['  … more (raise --limit, or narrow with --status and page with --cursor)']
        : [];
  return [`${title}:`, ...lines.map((line) => `  ${line}`), ...more];
}

export function registerStatusCommands(program: Command): void {
  addClientOptions(program.command('status <id>'))
    .description('show a request (req_…) or grant (grt_…): status, reviews, timeline, expiry')
    .action(
      action(async (ref: string, _options: unknown, command: Command) => {
        const flags = command.optsWithGlobals<ClientFlags>();
        const { kind, id } = requestOrGrantId(ref, '<id>');
        const client = clientFor(flags);
        if (kind === 'request') {
          const detail = await client.get('/api/v1/requests/{id}', requestDetail, { path: { id } });
          show(flags, detail, () => describeDetail(detail));
          return;
        }
        const { grant } = await client.get('/api/v1/grants/{id}', grantAnswer, { path: { id } });
        const detail = await client.get('/api/v1/requests/{id}', requestDetail, { path: { id: grant.requestId } });
        show(flags, { grant, request: detail.request, timeline: detail.timeline }, () =>
          [`grant ${describeGrant(grant)}`, '', describeDetail({ ...detail, grant: null })].join('\n'),
        );
      }),
    );

  addClientOptions(program.command('ls'))
    .description('list your requests and active grants (or --to-approve: requests waiting for you)')
    .option('--to-approve', 'pending requests you may approve or deny now')
    .option('--break-glass', 'break-glass uses awaiting their after-the-fact review (admins and auditors; review with `lapse review-break-glass`)')
    .option('--all', "everyone's requests and grants (admins and auditors)")
    .option('--status <status>', `only this status: ${[...REQUEST_STATUSES, ...GRANT_STATUSES].join(', ')}`)
    .option('--limit <n>', 'at most this many of each (1-200, default 50)')
    .option('--cursor <cursor>', 'the next page of a list (from the previous page; only when one list is shown: --to-approve, --break-glass or --status)')
    .action(
      action(async (_options: unknown, command: Command) => {
        const flags = command.optsWithGlobals<ListFlags>();
        if (flags.toApprove && flags.all) throw new LapseError('validation_failed', '--to-approve and --all do not go together', { where: '--to-approve' });
        if (flags.breakGlass && (flags.toApprove || flags.status))
          throw new LapseError('validation_failed', '--break-glass lists break-glass uses awaiting review; it takes no --to-approve or --status', {
            where: '--break-glass',
          });
        const status = oneOf(flags.status, [...REQUEST_STATUSES, ...GRANT_STATUSES], '--status');
        const pageSize = limit(flags.limit) ?? 50;
        const isGrantStatus = status !== undefined && (GRANT_STATUSES as readonly string[]).includes(status);
        const requestStatus = REQUEST_STATUSES.find((known) => known === status);
        if (flags.cursor !== undefined && !CURSOR.test(flags.cursor))
          throw new LapseError('validation_failed', '--cursor is not one lapse printed', {
            where: '--cursor',
            hint: 'Pass the cursor of the previous page unchanged.',
          });
        if (flags.cursor !== undefined && !flags.breakGlass && !flags.toApprove && status === undefined) {
          throw new LapseError('validation_failed', '--cursor pages one list: add --to-approve, --break-glass or --status', {
            where: '--cursor',
            hint: 'Without them, ls shows requests and grants together.',
          });
        }
        const cursor = flags.cursor;
        const client = clientFor(flags);
        if (flags.breakGlass) {
          const page = await client.get('/api/v1/requests', requestPage, { query: { scope: 'all', awaitingReview: 'true', limit: pageSize, cursor } });
          show(flags, { requests: page.items, nextCursor: page.nextCursor }, () =>
            section('break-glass awaiting review', page.items.map(requestLine), page.nextCursor).join('\n'),
          );
          return;
        }
        const scope = flags.toApprove ? 'review' : flags.all ? 'all' : 'mine';
        if (flags.toApprove && isGrantStatus)
          throw new LapseError('validation_failed', `--to-approve lists requests; "${status}" is a grant status`, { where: '--status' });

        // One list at a time when paging (checked above): the cursor belongs to the list shown.
        const requests = isGrantStatus
          ? null
          : await client.get('/api/v1/requests', requestPage, { query: { scope, status: requestStatus, limit: pageSize, cursor } });
        // Grants: the active ones by default (what you hold now), or those of the status asked for.
        const grants =
          flags.toApprove || (status !== undefined && !isGrantStatus)
            ? null
            : await client.get('/api/v1/grants', grantPage, {
                query: { scope: scope === 'all' ? 'all' : 'mine', status: status ?? 'provisioning,active', limit: pageSize, cursor },
              });
        const data = {
          requests: requests?.items ?? null,
          grants: grants?.items ?? null,
          nextCursor: { requests: requests?.nextCursor ?? null, grants: grants?.nextCursor ?? null },
        };
        show(flags, data, () =>
          [
            ...(requests
              ? section(
                  flags.toApprove ? 'waiting for your review' : 'requests',
                  requests.items.map(requestLine),
                  grants ? Boolean(requests.nextCursor) : requests.nextCursor,
                )
              : []),
            ...(grants
              ? section(status ? `${status} grants` : 'active grants', grants.items.map(grantLine), requests ? Boolean(grants.nextCursor) : grants.nextCursor)
              : []),
          ].join('\n'),
        );
      }),
    );
}
