import { formatDuration } from '../domain/duration.js';
import type { OutgoingNotification } from './types.js';

/**
 * What a notification says, channel-neutral: a title, facts as label/value pairs, and the one
 * thing to do (a portal link). Email renders it as text and HTML; chat channels will render blocks.
 */
export interface NotificationContent {
  readonly title: string;
  readonly summary: string;
  readonly facts: readonly (readonly [label: string, value: string])[];
  /** The next step, when the portal's address is known. */
  readonly action: { readonly label: string; readonly url: string } | undefined;
  /** Said when there is no link because auth.publicUrl is not set. */
  readonly note: string | undefined;
}

const str = (value: unknown): string => (typeof value === 'string' ? value : typeof value === 'number' ? String(value) : '');
const when = (value: unknown): string => {
  const text = str(value);
  const date = text ? new Date(text) : undefined;
  return date && !Number.isNaN(date.getTime())
    ? date
        .toISOString()
        .replace('T', ' ')
        .replace(/\.\d{3}Z$/, ' UTC')
    : '';
};
const duration = (value: unknown): string => (typeof value === 'number' && value > 0 ? formatDuration(value) : '');
/** "ends in 10m", not "ends in 9m59s984ms": the job fires a moment after its due time. */
const roughly = (value: unknown): string =>
  typeof value === 'number' && value > 0 ? formatDuration(Math.max(60_000, Math.round(value / 60_000) * 60_000)) : '';

export function describeNotification(n: OutgoingNotification): NotificationContent {
  const p = n.payload;
  const who = str(p.requester);
  const what = str(p.entitlement);
  const request = str(p.requestId);
  const grant = str(p.grantId);
  const requestFacts: [string, string][] = [
    ['Requester', who],
    ['Access', what],
    ['Duration', duration(p.durationMs)],
    ['Reason', str(p.reason)],
    ['Ticket', str(p.ticket)],
    ['Approval stage', str(p.stage)],
    ['Request', request],
  ];
  const link = (path: string, label: string) => ({ path, label });
  let title: string;
  let summary: string;
  let facts: [string, string][] = requestFacts;
  let next: { path: string; label: string } | undefined;
  switch (n.event) {
    case 'request.pending':
      title = `${who} asks for ${what}: your approval is needed`;
      summary = `${who} asked for ${what}${p.durationMs ? ` for ${duration(p.durationMs)}` : ''}, and you are an approver of stage ${str(p.stage)}.`;
      next = link(`/requests/${request}`, 'Review the request');
      break;
    case 'request.reminder':
      title = `Reminder: ${who}'s request for ${what} still waits for approval`;
      summary = `${who}'s request for ${what} has waited since ${when(p.since)} at stage ${str(p.stage)}.`;
      next = link(`/requests/${request}`, 'Review the request');
      break;
    case 'request.escalated':
      title = `Escalation: ${who}'s request for ${what} is still not decided`;
      summary = `Nobody at stage ${str(p.stage)} has decided ${who}'s request for ${what} since ${when(p.since)}; you are told as the escalation contact.`;
      next = link(`/requests/${request}`, 'Look at the request');
      break;
    case 'request.decided':
      title = `Your request for ${what} was ${str(p.outcome).replace('_', ' ')}`;
      summary =
        p.outcome === 'approved'
          ? `Your request for ${what} was approved${p.by ? ` by ${str(p.by)}` : ''}; the access is being set up.`
          : p.outcome === 'denied'
            ? `Your request for ${what} was denied${p.by ? ` by ${str(p.by)}` : ''}.`
            : `Your request for ${what} was not decided in time and has closed.`;
      facts = [
        ['Access', what],
        ['Comment', str(p.comment)],
        ['Request', request],
      ];
      next = link(`/requests/${request}`, 'See the request');
      break;
    case 'extension.pending':
      title = `${who} asks to extend ${what}: your approval is needed`;
      summary = `${who} asked to extend their access to ${what} by ${duration(p.durationMs)}.`;
      next = link(`/requests/${request}`, 'Review the extension');
      break;
    case 'grant.active':
      title = `Your access to ${what} is active`;
      summary = `Your access to ${what} is active until ${when(p.expiresAt)}.`;
      facts = [
        ['Access', what],
        ['Ends', when(p.expiresAt)],
        ['Grant', grant],
      ];
      next = link('/access', 'See your access');
      break;
    case 'grant.ending_soon':
      title = `Your access to ${what} ends in ${roughly(p.endsInMs) || 'a few minutes'}`;
      summary = `Your access to ${what} ends at ${when(p.expiresAt)}. Extend it now if you still need it.`;
      facts = [
        ['Access', what],
        ['Ends', when(p.expiresAt)],
        ['Grant', grant],
      ];
      next = link(`/access#${grant}`, 'Extend your access');
      break;
    case 'grant.ended':
      title = `Your access to ${what} has ended`;
      summary = `Your access to ${what} has ended (${str(p.reason) || 'ended'}) and was removed from the target.`;
      facts = [
        ['Access', what],
        ['Grant', grant],
      ];
      next = link('/', 'Request access again');
      break;
    case 'break_glass.used':
      title = `BREAK-GLASS: ${who} opened ${what}`;
      summary = `${who} used break-glass to open ${what} for ${duration(p.durationMs)}. It needs an after-the-fact review.`;
      facts = [
        ['Who', who],
        ['Access', what],
        ['Reason', str(p.reason)],
        ['Request', request],
        ['Grant', grant],
      ];
      next = link(`/requests/${request}`, 'Review the break-glass use');
      break;
    case 'grant.revoke_failing':
      title = `Revocation failing: ${what} of ${who}`;
      summary = `Lapse could not remove ${who}'s access to ${what}; it keeps retrying. The access is still there until it succeeds or an admin force-closes it.`;
      facts = [
        ['Holder', who],
        ['Access', what],
        ['Grant', grant],
        ['Last error', str(p.error).slice(0, 300)],
      ];
      next = link('/security', 'See overdue revocations');
      break;
    case 'finding.opened':
      title = `Drift found on ${str(p.target)}: ${str(p.kind)} access for ${str(p.account)}`;
      summary =
        p.kind === 'standing'
          ? `Reconciliation found access on ${str(p.target)} that no Lapse grant covers.`
          : `Reconciliation found that access Lapse granted on ${str(p.target)} is gone.`;
      facts = [
        ['Target', str(p.target)],
        ['Entitlement', str(p.entitlement)],
        ['Account', str(p.account)],
        ['Finding', str(p.findingId)],
      ];
      next = link('/admin', 'See the findings');
      break;
    case 'config.rejected':
      title = 'Lapse rejected a new configuration';
      summary = `A changed configuration was rejected; the one in force (${str(p.inForce).slice(0, 12)}) stays. Fix the file and it is read again.`;
      facts = [['Problem', str(p.error).slice(0, 1000)]];
      next = undefined;
      break;
    case 'review.opened':
    case 'review.reminder':
      title = n.event === 'review.opened' ? `Access review ${str(p.name)} is open` : `Reminder: access review ${str(p.name)} has items waiting`;
      summary = `Decide whether people keep their privileged access before ${when(p.deadline)}; unanswered items get the campaign's default.`;
      facts = [
        ['Campaign', str(p.name)],
        ['Items', str(p.items)],
        ['Deadline', when(p.deadline)],
      ];
      next = link('/reviews', 'Open your review queue');
      break;
    case 'alert.raised':
      title = `Lapse alert (${str(p.severity)}): ${str(p.kind)}`;
      summary = str(p.summary);
      facts = [
        ['Person', str(p.principal)],
        ['Alert', str(p.alertId)],
      ];
      next = link('/alerts', 'See the alert');
      break;
  }
  return {
    title,
    summary,
    facts: facts.filter(([, value]) => value !== ''),
    action: next && n.portalUrl ? { label: next.label, url: `${n.portalUrl}${next.path}` } : undefined,
    note:
      next && !n.portalUrl
        ? `This message has no link because the portal's address (auth.publicUrl) is not configured; open Lapse and look for ${request || grant || 'it'}.`
        : undefined,
  };
}
