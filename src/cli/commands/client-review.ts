import type { Command } from 'commander';
import { MAX_COMMENT_LENGTH, MAX_REASON_LENGTH } from '../../domain/input-schemas.js';
import { action } from '../output.js';
import { addClientOptions, addStepUpOption, clientFor, duration, idOf, text, ticket, type ClientFlags } from './client-flags.js';
import { describeGrant, describeRequest, grantAnswer, requestAnswer, reviewAnswer } from './client-resources.js';
import { show } from './client-show.js';

/** Approving, denying, and changing grants that exist: extend, release, revoke. */

interface ReviewFlags extends ClientFlags {
  comment?: string;
}

interface GrantFlags extends ClientFlags {
  for?: string;
  reason?: string;
  ticket?: string;
}

/** A decision's request id, optional comment and client, checked before anything is sent. */
function reviewOf(ref: string, command: Command) {
  const flags = command.optsWithGlobals<ReviewFlags>();
  const id = idOf('request', ref, '<request-id>');
  const comment = text(flags.comment, '--comment', MAX_COMMENT_LENGTH, false);
  return { flags, id, comment, client: clientFor(flags) };
}

function registerReview(program: Command, verb: 'approve' | 'deny', description: string): void {
  addStepUpOption(addClientOptions(program.command(`${verb} <request-id>`)))
    .description(description)
    .option('--comment <text>', `a note for the requester and the audit log (at most ${MAX_COMMENT_LENGTH} characters)`)
    .action(
      action(async (ref: string, _options: unknown, command: Command) => {
        const { flags, id, comment, client } = reviewOf(ref, command);
        const answer = await client.post('/api/v1/requests/{id}/reviews', reviewAnswer, {
          path: { id },
          body: { decision: verb, ...(comment ? { comment } : {}) },
        });
        // An approval of one stage of several leaves the request pending: say so rather than "approved".
        const done = verb === 'deny' ? 'denied' : answer.request.status === 'pending' ? 'approval recorded' : 'approved';
        show(flags, answer, () => `${done}: ${describeRequest(answer.request)}`);
      }),
    );
}

export function registerReviewCommands(program: Command): void {
  registerReview(program, 'approve', 'approve a pending request (its current stage); you cannot approve your own');
  registerReview(program, 'deny', 'deny a pending request');

  addClientOptions(program.command('review-break-glass <request-id>'))
    .description('record the after-the-fact review of a break-glass use (admins and auditors; not your own; once)')
    .option('--comment <text>', `what you found (at most ${MAX_COMMENT_LENGTH} characters)`)
    .action(
      action(async (ref: string, _options: unknown, command: Command) => {
        const { flags, id, comment, client } = reviewOf(ref, command);
        const { request } = await client.post('/api/v1/break-glass/{id}/review', requestAnswer, { path: { id }, body: comment ? { comment } : {} });
        show(flags, { request }, () => `break-glass use reviewed: ${describeRequest(request)}`);
      }),
    );

  addClientOptions(program.command('cancel <request-id>'))
    .description('withdraw your own pending request')
    .action(
      action(async (ref: string, _options: unknown, command: Command) => {
        const flags = command.optsWithGlobals<ClientFlags>();
        const id = idOf('request', ref, '<request-id>');
        const client = clientFor(flags);
        const { request } = await client.post('/api/v1/requests/{id}/cancel', requestAnswer, { path: { id } });
        show(flags, { request }, () => `cancelled: ${describeRequest(request)}`);
      }),
    );

  addStepUpOption(addClientOptions(program.command('extend <grant-id>')))
    .description('ask for more time on an active grant (may need approval, like a request)')
    .requiredOption('--for <duration>', 'how much longer, e.g. 30m')
    .option('--reason <text>', 'why you need more time (required)')
    .option('--ticket <ref>', 'change or incident ticket, if the policy asks for one')
    .action(
      action(async (ref: string, _options: unknown, command: Command) => {
        const flags = command.optsWithGlobals<GrantFlags>();
        const id = idOf('grant', ref, '<grant-id>');
        const body = {
          duration: duration(flags.for!, '--for'),
          reason: text(flags.reason, '--reason', MAX_REASON_LENGTH, true)!,
          ...(flags.ticket !== undefined ? { ticket: ticket(flags.ticket) } : {}),
        };
        const client = clientFor(flags);
        const { request } = await client.post('/api/v1/grants/{id}/extend', requestAnswer, { path: { id }, body });
        show(flags, { request }, () => `extension ${describeRequest(request)}`);
      }),
    );

  addStepUpOption(addClientOptions(program.command('release <grant-id>')))
    .description('give access back early (the target is cleaned up now)')
    .option('--reason <text>', 'why, for the audit log')
    .action(
      action(async (ref: string, _options: unknown, command: Command) => {
        const flags = command.optsWithGlobals<GrantFlags>();
        const id = idOf('grant', ref, '<grant-id>');
        const reason = text(flags.reason, '--reason', MAX_REASON_LENGTH, false);
        const client = clientFor(flags);
        const { grant } = await client.post('/api/v1/grants/{id}/release', grantAnswer, { path: { id }, body: reason ? { reason } : {} });
        show(flags, { grant }, () => `released: ${describeGrant(grant)}`);
      }),
    );

  addStepUpOption(addClientOptions(program.command('revoke <grant-id>')))
    .description("end someone's access now (admins)")
    .option('--reason <text>', 'why (required; audited and shown to the holder)')
    .action(
      action(async (ref: string, _options: unknown, command: Command) => {
        const flags = command.optsWithGlobals<GrantFlags>();
        const id = idOf('grant', ref, '<grant-id>');
        const reason = text(flags.reason, '--reason', MAX_REASON_LENGTH, true)!;
        const client = clientFor(flags);
        const { grant } = await client.post('/api/v1/grants/{id}/revoke', grantAnswer, { path: { id }, body: { reason } });
        show(flags, { grant }, () => `revoked: ${describeGrant(grant)}`);
      }),
    );
}
