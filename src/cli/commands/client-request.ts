import type { Command } from 'commander';
import { parseDuration } from '../../domain/duration.js';
import { EXIT, LapseError } from '../../domain/errors.js';
import { MAX_REASON_LENGTH } from '../../domain/input-schemas.js';
import type { LapseClient } from '../client.js';
import { action } from '../output.js';
import { connectionHint, connectorOf, describeCredentials, fetchCredentials } from './client-credentials.js';
import {
  addClientOptions,
  addStepUpOption,
  clientFor,
  duration,
  entitlementRef,
  idOf,
  parameters,
  sshPublicKey,
  text,
  ticket,
  type ClientFlags,
} from './client-flags.js';
import { followRequest, type FollowOutcome } from './client-follow.js';
import { confirm, interactive } from './client-prompt.js';
import { awaitedApprovers, describeGrant, grantAnswer, requestAnswer, type LapseGrant, type LapseRequest } from './client-resources.js';
import { progress, show } from './client-show.js';

const collect = (value: string, previous: string[]) => [...previous, value];
const MAX_WAIT_MS = 24 * 3_600_000;

export interface AskFlags extends ClientFlags {
  for?: string;
  reason?: string;
  ticket?: string;
  param: string[];
  sshKey?: string;
  wait?: boolean;
  timeout: string;
  yes?: boolean;
}

/** Exit codes of `--wait` (docs/cli.md): 0 only when the access is active. */
const OUTCOME_EXIT: Record<FollowOutcome, number> = {
  active: EXIT.ok,
  denied: EXIT.failed,
  cancelled: EXIT.failed,
  timed_out: EXIT.failed,
  ended: EXIT.failed,
  failed: EXIT.unavailable,
  wait_timeout: EXIT.unavailable,
};

function addAskOptions(command: Command, forDefault: string | undefined): Command {
  return addStepUpOption(addClientOptions(command))
    .option('--for <duration>', `how long, e.g. 30m, 1h, 1h30m${forDefault ? ` (default ${forDefault})` : " (default: the policy's)"}`, forDefault)
    .option('--reason <text>', `why you need it (shown to approvers and audited; at most ${MAX_REASON_LENGTH} characters)`)
    .option('--param <key=value>', 'a request parameter the connector takes (repeatable)', collect, [])
    .option('--ssh-key <file>', 'your SSH public key, for ssh targets (sets the parameter sshPublicKey)')
    .option('--wait', 'follow the request until access is active (or refused), then print credentials once')
    .option('--timeout <duration>', 'with --wait: give up waiting after this long (at most 24h)', '15m');
}

/** Everything checked and assembled before any network call. */
export function askBody(ref: string, flags: AskFlags, breakGlass: boolean) {
  const { target, entitlement } = entitlementRef(ref);
  const params = parameters(flags.param);
  if (flags.sshKey !== undefined) {
    if (Object.hasOwn(params, 'sshPublicKey'))
      throw new LapseError('validation_failed', 'give the SSH key once: --ssh-key or --param sshPublicKey=…', { where: '--ssh-key' });
    params.sshPublicKey = sshPublicKey(flags.sshKey);
  }
  const body = {
    target,
    entitlement,
    ...(flags.for !== undefined ? { duration: duration(flags.for, '--for') } : {}),
    reason: text(flags.reason, '--reason', MAX_REASON_LENGTH, true)!,
    ...(!breakGlass && flags.ticket !== undefined ? { ticket: ticket(flags.ticket) } : {}),
    ...(Object.keys(params).length > 0 ? { parameters: params } : {}),
  };
  const waitMs = parseDuration(duration(flags.timeout, '--timeout', MAX_WAIT_MS), '--timeout');
  return { body, waitMs };
}

function decision(request: LapseRequest): string {
  const what = `${request.id}: ${request.target}/${request.entitlement}`;
  switch (request.status) {
    case 'approved':
      return `${what} approved${request.policy ? ` by policy ${request.policy}` : ''}${request.grantId ? `; grant ${request.grantId} is being set up` : ''}`;
    case 'pending':
      return `${what} is pending: it needs ${awaitedApprovers(request)}`;
    case 'denied':
      return [`${what} was denied`, ...request.reasons.map((r) => `  - ${r}`)].join('\n');
    default:
      return `${what} is ${request.status}`;
  }
}

/** After submitting: print the decision, or follow it with --wait and hand out credentials once. */
export async function answer(client: LapseClient, flags: AskFlags, request: LapseRequest, waitMs: number): Promise<number> {
  if (!flags.wait) {
    const next =
      request.status === 'pending'
        ? `Follow it with \`lapse status ${request.id}\` (or ask with --wait).`
        : request.grantId
          ? `Follow it with \`lapse status ${request.grantId}\`.`
          : '';
    show(flags, { request }, () => [decision(request), next].filter(Boolean).join('\n'));
    return request.status === 'denied' ? EXIT.failed : EXIT.ok;
  }
  progress(flags, decision(request));
  const { outcome, detail } = await followRequest(client, request.id, waitMs, (line) => progress(flags, line));
  const grant = detail.grant ?? null;
  if (outcome !== 'active' || !grant) {
    show(flags, { outcome, ...detail }, () => endedWithout(outcome, detail.request, grant, waitMs));
    return OUTCOME_EXIT[outcome];
  }
  const credentials = grant.credentialsWaiting ? await fetchCredentials(client, grant.id) : null;
  const hint = credentials && !flags.json ? connectionHint(await connectorOf(client, grant.target, grant.entitlement), credentials) : undefined;
  show(flags, { outcome, request: detail.request, grant, credentials }, () =>
    [describeGrant({ ...grant, credentialsWaiting: false }), ...(credentials ? ['', describeCredentials(grant.id, credentials, hint)] : [])].join('\n'),
  );
  return EXIT.ok;
}

function endedWithout(outcome: FollowOutcome, request: LapseRequest, grant: LapseGrant | null, waitMs: number): string {
  switch (outcome) {
    case 'wait_timeout':
      return `stopped waiting after ${Math.round(waitMs / 60_000)} min; ${request.id} is still ${grant ? `granting (${grant.status})` : request.status}. Check later with \`lapse status ${request.id}\`.`;
    case 'failed':
      return `the grant could not be set up on the target${grant?.lastError ? `: ${grant.lastError}` : ''}`;
    case 'ended':
      return `the grant ended before it could be used${grant?.endReason ? `: ${grant.endReason}` : ''}`;
    default:
      return decision(request);
  }
}

export function registerRequestCommands(program: Command): void {
  addAskOptions(program.command('request <target/entitlement>'), undefined)
    .description('ask for access; prints the decision, or with --wait follows it and prints credentials once')
    .option('--ticket <ref>', 'change or incident ticket, if the policy asks for one')
    .action(
      action(async (ref: string, _options: unknown, command: Command) => {
        const flags = command.optsWithGlobals<AskFlags>();
        const { body, waitMs } = askBody(ref, flags, false);
        const client = clientFor(flags);
        const { request } = await client.post('/api/v1/requests', requestAnswer, { body });
        return answer(client, flags, request, waitMs);
      }),
    );

  addAskOptions(program.command('break-glass <target/entitlement>'), undefined)
    .description('emergency access without approval: granted at once, alerted and reviewed afterwards')
    .option('-y, --yes', 'do not ask for confirmation (needed when not on a terminal)')
    .action(
      action(async (ref: string, _options: unknown, command: Command) => {
        const flags = command.optsWithGlobals<AskFlags>();
        const { body, waitMs } = askBody(ref, flags, true);
        if (flags.for === undefined)
          throw new LapseError('validation_failed', 'break-glass needs --for', { where: '--for', hint: 'Ask for as little as you need, e.g. --for 30m.' });
        if (!flags.yes) {
          if (!interactive())
            throw new LapseError('validation_failed', 'break-glass asks for confirmation, and this is not a terminal', {
              where: '--yes',
              hint: 'Add --yes to confirm from a script.',
            });
          const ok = await confirm(
            `Break-glass access to ${body.target}/${body.entitlement} for ${body.duration}: security is alerted and the use is reviewed.`,
            'yes',
          );
          if (!ok) {
            process.stderr.write('Not confirmed; nothing was requested.\n');
            return EXIT.failed;
          }
        }
        const client = clientFor(flags);
        const { request } = await client.post('/api/v1/break-glass', requestAnswer, { body: { ...body, duration: duration(flags.for, '--for') } });
        return answer(client, flags, request, waitMs);
      }),
    );

  addClientOptions(program.command('credentials <grant-id>'))
    .description('fetch the credentials of an active grant (once: the server erases them when fetched)')
    .action(
      action(async (grantId: string, _options: unknown, command: Command) => {
        const flags = command.optsWithGlobals<ClientFlags>();
        const id = idOf('grant', grantId, '<grant-id>');
        const client = clientFor(flags);
        const { grant } = await client.get('/api/v1/grants/{id}', grantAnswer, { path: { id } });
        const credentials = await fetchCredentials(client, grant.id);
        const hint = flags.json ? undefined : connectionHint(await connectorOf(client, grant.target, grant.entitlement), credentials);
        show(flags, { grant, credentials }, () => describeCredentials(grant.id, credentials, hint));
      }),
    );
}
