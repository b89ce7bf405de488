import type { NotificationsConfig, NotificationRule } from '../config/types.js';
import { newId } from '../domain/ids.js';
import { eventFromAudit, URGENT_EVENTS, type NotificationEvent, type NotificationEventName } from '../domain/notifications.js';
import { matchesEntitlementPattern } from '../domain/policy/index.js';
import { peopleBehind } from '../domain/principal.js';
import type { AccessRequest } from '../domain/request.js';
import {
  enabledUsersIn,
  getGrantsByIds,
  getRequestsByIds,
  insertDeliveries,
  scheduleJob,
  scheduleJobsNow,
  type NewDelivery,
  type StoredGrant,
} from '../store/index.js';
import { SLACK_CHANNEL_RECIPIENT } from '../notify/index.js';
import type { AuditEntry, EngineContext, UnitOfWork } from './context.js';
import { enqueueWebhookEvents } from './webhook-outbox.js';

/**
 * The outbox (docs/notifications.md): notifications become delivery rows in the transaction of the
 * change they tell of. NB. Hooked where a unit of work's audit records are collected (transact),
 * not in each use-case: every state change is audited, so no use-case can forget to notify, and a
 * change that rolls back takes its notifications with it.
 */

/**
 * The recipient of a post to a chat channel (Teams): the channel itself, once per event
 * occurrence, whoever the rule's people are.
 */
export const CHANNEL_RECIPIENT = 'channel';

/** Channel types that post to a channel rather than to each person. */
const POSTS_TO_CHANNEL: ReadonlySet<string> = new Set(['teams']);

/** Whether any rule routes this event (nothing is looked up for events nobody wants). */
function routed(config: NotificationsConfig, name: NotificationEventName): boolean {
  return config.rules.some((rule) => rule.events.has(name));
}

/**
 * Turns the audit records of one unit of work into deliveries, and sets the timers that follow
 * from them (ending soon, approval reminders); returns how many deliveries were written.
 */
export async function recordNotifications(context: EngineContext, unit: UnitOfWork, entries: readonly AuditEntry[]): Promise<number> {
  const config = context.config().notifications;
  if (entries.length === 0) return 0;
  const events: NotificationEvent[] = [];
  const all: NotificationEvent[] = [];
  for (const entry of entries) {
    if (config.rules.length > 0) await scheduleTimers(config, unit, entry);
    const event = eventFromAudit(entry);
    if (!event) continue;
    all.push(event);
    if (routed(config, event.name)) events.push(event);
  }
  const notified = events.length > 0 ? await enqueueEvents(context, unit, events) : 0;
  // Outbound event webhooks take every event, routed or not (src/engine/webhook-outbox.ts).
  return notified + (all.length > 0 ? await enqueueWebhookEvents(context, unit, all) : 0);
}

async function scheduleTimers(config: NotificationsConfig, unit: UnitOfWork, entry: AuditEntry): Promise<void> {
  const data = entry.data ?? {};
  if ((entry.action === 'grant.activated' || entry.action === 'grant.extended') && entry.subject && typeof data.expiresAt === 'string') {
    if (!routed(config, 'grant.ending_soon')) return;
    // NB. Rescheduled on extension: the one job per grant moves to the new end.
    const at = new Date(new Date(data.expiresAt).getTime() - config.endingSoonMs);
    await scheduleJob(unit.tx, 'notify_ending', entry.subject, { at: at < unit.now ? unit.now : at });
    return;
  }
  const opensStage =
    entry.action === 'request.pending' || entry.action === 'extension.pending' || (entry.action === 'review.approve' && data.effect === 'advanced');
  if (!opensStage || !entry.subject) return;
  const { remindAfterMs, escalateAfterMs } = config.approvals;
  if (remindAfterMs !== undefined && routed(config, 'request.reminder')) {
    await scheduleJob(unit.tx, 'notify_reminder', entry.subject, { delayMs: remindAfterMs });
  }
  if (escalateAfterMs !== undefined && routed(config, 'request.escalated')) {
    await scheduleJob(unit.tx, 'notify_escalation', entry.subject, { delayMs: escalateAfterMs });
  }
}

/** What routing and rendering know of an event once its request or grant is read. */
export interface EventFacts {
  /** Distinguishes occurrences of one event on one subject (a stage, an expiry). */
  readonly occurrence: string;
  /** The people the event is about (a rule's `to.audience`). */
  readonly audience: { readonly users: readonly string[]; readonly groups: readonly string[]; readonly exclude: readonly string[] };
  readonly entitlement: string | undefined;
  readonly policy: string | null;
  readonly payload: Record<string, unknown>;
}

const NOBODY = { users: [], groups: [], exclude: [] };

/** The grants and requests a batch of events is about, read together (two queries, however many events). */
export interface Subjects {
  readonly grants: ReadonlyMap<string, StoredGrant>;
  readonly requests: ReadonlyMap<string, AccessRequest>;
}

const GRANT_EVENTS: ReadonlySet<NotificationEventName> = new Set(['grant.active', 'grant.ending_soon', 'grant.ended', 'grant.revoke_failing']);
const REQUEST_EVENTS: ReadonlySet<NotificationEventName> = new Set([
  'request.pending',
  'request.reminder',
  'request.escalated',
  'request.decided',
  'extension.pending',
  'break_glass.used',
]);

export async function readSubjects(unit: UnitOfWork, events: readonly NotificationEvent[]): Promise<Subjects> {
  const ids = (names: ReadonlySet<NotificationEventName>) => events.filter((e) => names.has(e.name) && e.subject).map((e) => e.subject!);
  const grants = await getGrantsByIds(unit.tx, ids(GRANT_EVENTS));
  const requests = await getRequestsByIds(unit.tx, [...ids(REQUEST_EVENTS), ...[...grants.values()].map((g) => g.requestId)]);
  return { grants, requests };
}

export function factsOf(context: EngineContext, unit: UnitOfWork, subjects: Subjects, event: NotificationEvent): EventFacts | undefined {
  const data = event.data;
  const subject = event.subject ?? '';
  switch (event.name) {
    case 'request.pending':
    case 'request.reminder':
    case 'request.escalated':
    case 'request.decided':
    case 'extension.pending':
    case 'break_glass.used': {
      const request = subjects.requests.get(subject);
      if (!request) return undefined;
      const stage = request.stages[request.currentStage];
      const approvers = stage ? { ...stage.approvers, exclude: peopleBehind(request.principal) } : NOBODY;
      const escalateTo = { ...context.config().notifications.approvals.escalateTo, exclude: peopleBehind(request.principal) };
      const audience =
        event.name === 'request.decided'
          ? { users: [request.principal.id], groups: [], exclude: [] }
          : event.name === 'request.escalated'
            ? escalateTo
            : event.name === 'break_glass.used'
              ? NOBODY
              : approvers;
      const stageKey = `${request.id}:${request.currentStage}`;
      const occurrence =
        event.name === 'request.pending' || event.name === 'extension.pending'
          ? stageKey
          : event.name === 'request.reminder' || event.name === 'request.escalated'
            ? `${stageKey}:${String(data.round ?? 1)}`
            : request.id;
      return { occurrence, audience, entitlement: `${request.target}/${request.entitlement}`, policy: request.policy, payload: requestPayload(request, event) };
    }
    case 'grant.active':
    case 'grant.ending_soon':
    case 'grant.ended':
    case 'grant.revoke_failing': {
      const grant = subjects.grants.get(subject);
      if (!grant) return undefined;
      const request = subjects.requests.get(grant.requestId);
      const holder = { users: [grant.principalId], groups: [], exclude: [] };
      const occurrence = event.name === 'grant.ending_soon' ? `${grant.id}:${grant.expiresAt?.toISOString() ?? ''}` : grant.id;
      return {
        occurrence,
        audience: event.name === 'grant.revoke_failing' ? NOBODY : holder,
        entitlement: `${grant.target}/${grant.entitlement}`,
        policy: request?.policy ?? null,
        payload: grantPayload(grant, event, unit.now),
      };
    }
    case 'finding.opened':
      return {
        occurrence: subject,
        audience: NOBODY,
        entitlement: `${String(data.target)}/${String(data.entitlement)}`,
        policy: null,
        payload: { findingId: subject, target: data.target, entitlement: data.entitlement, account: data.account, kind: data.kind, principal: data.principal },
      };
    case 'review.opened':
    case 'review.reminder': {
      // Access reviews (docs/reviews.md): the reviewers with items to decide.
      const reviewers = (data.reviewers ?? {}) as { users?: string[]; groups?: string[] };
      return {
        occurrence: event.name === 'review.reminder' ? `${subject}:${String(data.round ?? 1)}` : subject,
        audience: { users: reviewers.users ?? [], groups: reviewers.groups ?? [], exclude: [] },
        entitlement: undefined,
        policy: null,
        payload: { campaignId: subject, name: data.name, deadline: data.deadline, items: data.items ?? data.pending },
      };
    }
    case 'config.rejected':
      return {
        occurrence: unit.now.toISOString(),
        audience: NOBODY,
        entitlement: undefined,
        policy: null,
        payload: { inForce: data.inForce, error: String(data.error ?? '').slice(0, 2000) },
      };
    case 'alert.raised':
      // Security alerts go to the channels a rule names (the security channel), never to a person.
      return {
        occurrence: subject,
        audience: NOBODY,
        entitlement: typeof data.entitlement === 'string' ? data.entitlement : undefined,
        policy: null,
        payload: { alertId: subject, kind: data.kind, severity: data.severity, summary: String(data.summary ?? '').slice(0, 1000), principal: data.principal },
      };
  }
}

function requestPayload(request: AccessRequest, event: NotificationEvent): Record<string, unknown> {
  return {
    requestId: request.id,
    kind: request.kind,
    requester: request.principal.id,
    entitlement: `${request.target}/${request.entitlement}`,
    durationMs: request.durationMs,
    reason: request.reason.slice(0, 1000),
    ticket: request.ticket,
    stage: request.stages[request.currentStage]?.name ?? null,
    // For chat buttons: which policy (interactive approval is opted into per policy), and whether
    // the open stage wants MFA step-up (then only the portal may decide).
    policy: request.policy,
    stageMfa: request.stages[request.currentStage]?.mfaMaxAgeMs !== undefined,
    since: request.createdAt.toISOString(),
    grantId: request.grantId,
    ...(event.name === 'request.decided' ? { outcome: event.data.outcome, by: event.actor === 'system' ? null : event.actor } : {}),
  };
}

function grantPayload(grant: StoredGrant, event: NotificationEvent, now: Date): Record<string, unknown> {
  return {
    grantId: grant.id,
    requestId: grant.requestId,
    requester: grant.principalId,
    entitlement: `${grant.target}/${grant.entitlement}`,
    expiresAt: grant.expiresAt?.toISOString() ?? null,
    breakGlass: grant.breakGlass,
    ...(event.name === 'grant.ending_soon' && grant.expiresAt ? { endsInMs: Math.max(0, grant.expiresAt.getTime() - now.getTime()) } : {}),
    ...(event.name === 'grant.ended' ? { reason: grant.endReason } : {}),
    ...(event.name === 'grant.revoke_failing' ? { error: String(event.data.error ?? grant.lastError ?? '').slice(0, 500) } : {}),
  };
}

/** The `event` a rule's `when` reads: names and flags, never free text a requester wrote. */
function conditionView(event: NotificationEvent, facts: EventFacts): Record<string, unknown> {
  const [target = '', entitlement = ''] = (facts.entitlement ?? '/').split('/');
  return {
    event: {
      name: event.name,
      subject: event.subject ?? '',
      actor: event.actor,
      requester: String(facts.payload.requester ?? ''),
      target,
      entitlement: facts.entitlement ?? '',
      entitlementName: entitlement,
      policy: facts.policy ?? '',
      urgent: URGENT_EVENTS.has(event.name),
      breakGlass: facts.payload.breakGlass === true || event.name === 'break_glass.used',
      outcome: String(facts.payload.outcome ?? ''),
      stage: String(facts.payload.stage ?? ''),
    },
  };
}

function ruleMatches(context: EngineContext, rule: NotificationRule, event: NotificationEvent, facts: EventFacts): boolean {
  if (!rule.events.has(event.name)) return false;
  if (rule.targets) {
    const [target, entitlement] = (facts.entitlement ?? '').split('/');
    if (!target || !entitlement || !rule.targets.some((pattern) => matchesEntitlementPattern(pattern, target, entitlement))) return false;
  }
  if (rule.policies && (!facts.policy || !rule.policies.includes(facts.policy))) return false;
  if (!rule.when) return true;
  const result = rule.when(conditionView(event, facts));
  if (typeof result === 'object') {
    context.logger.warn({ rule: rule.index, event: event.name, error: result.error }, 'notification rule condition failed; the rule does not apply');
    return false;
  }
  return result;
}

/**
 * Routes events through the rules and writes one delivery per event occurrence, channel and
 * recipient (repeats of an occurrence are dropped by the dedupe key), each with its `notify` job.
 */
export async function enqueueEvents(context: EngineContext, unit: UnitOfWork, events: readonly NotificationEvent[]): Promise<number> {
  const config = context.config().notifications;
  const deliveries = new Map<string, NewDelivery>();
  if (events.length === 0) return 0;
  // NB. A revoke batch tells of up to 100 grants inside the revocation's transaction: their
  // grants, requests and people are read in three queries, not three per event.
  const subjects = await readSubjects(unit, events);
  const routedEvents: { event: NotificationEvent; facts: EventFacts; rules: NotificationRule[] }[] = [];
  for (const event of events) {
    const facts = factsOf(context, unit, subjects, event);
    if (!facts) continue;
    const rules = config.rules.filter((rule) => ruleMatches(context, rule, event, facts));
    if (rules.length > 0) routedEvents.push({ event, facts, rules });
  }
  const names = new Set<string>();
  const groups = new Set<string>();
  for (const { facts, rules } of routedEvents) {
    for (const rule of rules) {
      if (rule.to.audience) {
        facts.audience.users.forEach((n) => names.add(n));
        facts.audience.groups.forEach((g) => groups.add(g));
      }
      rule.to.users.forEach((n) => names.add(n));
      rule.to.groups.forEach((g) => groups.add(g));
    }
  }
  const people = await enabledUsersIn(unit.tx, [...names], [...groups]);
  /** The enabled users named or in the groups, as enabledUserNamesIn answers (by name, at most 1,000). */
  const among = (users: readonly string[], inGroups: readonly string[]) =>
    people
      .filter((p) => users.includes(p.name) || p.groups.some((g) => inGroups.includes(g)))
      .slice(0, 1000)
      .map((p) => p.name);
  for (const { event, facts, rules } of routedEvents) {
    for (const rule of rules) {
      const recipients = new Set<string>();
      if (rule.to.audience) {
        for (const name of among(facts.audience.users, facts.audience.groups)) {
          if (!facts.audience.exclude.includes(name)) recipients.add(name);
        }
      }
      for (const name of among(rule.to.users, rule.to.groups)) recipients.add(name);
      for (const address of rule.to.addresses) recipients.add(`address:${address}`);
      for (const slackChannel of rule.to.slackChannels) recipients.add(`${SLACK_CHANNEL_RECIPIENT}${slackChannel}`);
      for (const channel of rule.channels) {
        const type = config.channels.get(channel)?.type;
        if (!type) continue;
        // A chat channel post (Teams) goes to the channel itself; otherwise email addresses go by
        // email, Slack channels by Slack, people by every channel.
        for (const recipient of POSTS_TO_CHANNEL.has(type) ? [CHANNEL_RECIPIENT] : recipients) {
          if (recipient.startsWith('address:') ? type === 'slack' : recipient.startsWith(SLACK_CHANNEL_RECIPIENT) && type !== 'slack') continue;
          const dedupeKey = `${event.name}:${facts.occurrence}:${channel}:${recipient}`;
          if (deliveries.has(dedupeKey)) continue;
          deliveries.set(dedupeKey, {
            id: newId('delivery'),
            dedupeKey,
            event: event.name,
            subjectId: event.subject,
            channel,
            channelType: type,
            recipient,
            urgent: URGENT_EVENTS.has(event.name),
            payload: facts.payload,
          });
        }
      }
    }
  }
  const written = await insertDeliveries(unit.tx, [...deliveries.values()], unit.now);
  await scheduleJobsNow(unit.tx, 'notify', written);
  // (Other replicas hear of them through NOTIFY; transact pokes this one's notification worker.)
  if (written.length > 0) unit.wake();
  return written.length;
}
