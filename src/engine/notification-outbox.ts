import type { NotificationsConfig, NotificationRule } from '../config/types.js';
import { newId } from '../domain/ids.js';
import { eventFromAudit, URGENT_EVENTS, type NotificationEvent, type NotificationEventName } from '../domain/notifications.js';
import { matchesEntitlementPattern } from '../domain/policy/index.js';
import { peopleBehind } from '../domain/principal.js';
import type { AccessRequest } from '../domain/request.js';
import {
  enabledUserNamesIn,
  getGrant,
  getRequest,
  insertDeliveries,
  scheduleJob,
  scheduleJobsNow,
  type NewDelivery,
  type StoredGrant,
} from '../store/index.js';
import type { AuditEntry, EngineContext, UnitOfWork } from './context.js';

/**
 * The outbox (docs/notifications.md): notifications become delivery rows in the transaction of the
 * change they tell of. NB. Hooked where a unit of work's audit records are collected (transact),
 * not in each use-case: every state change is audited, so no use-case can forget to notify, and a
 * change that rolls back takes its notifications with it.
 */

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
  if (config.rules.length === 0 || entries.length === 0) return 0;
  const events: NotificationEvent[] = [];
  for (const entry of entries) {
    await scheduleTimers(config, unit, entry);
    const event = eventFromAudit(entry);
    if (event && routed(config, event.name)) events.push(event);
  }
  return enqueueEvents(context, unit, events);
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
interface EventFacts {
  /** Distinguishes occurrences of one event on one subject (a stage, an expiry). */
  readonly occurrence: string;
  /** The people the event is about (a rule's `to.audience`). */
  readonly audience: { readonly users: readonly string[]; readonly groups: readonly string[]; readonly exclude: readonly string[] };
  readonly entitlement: string | undefined;
  readonly policy: string | null;
  readonly payload: Record<string, unknown>;
}

const NOBODY = { users: [], groups: [], exclude: [] };

async function factsOf(context: EngineContext, unit: UnitOfWork, event: NotificationEvent): Promise<EventFacts | undefined> {
  const data = event.data;
  const subject = event.subject ?? '';
  switch (event.name) {
    case 'request.pending':
    case 'request.reminder':
    case 'request.escalated':
    case 'request.decided':
    case 'extension.pending':
    case 'break_glass.used': {
      const request = await getRequest(unit.tx, subject);
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
      const grant = await getGrant(unit.tx, subject);
      if (!grant) return undefined;
      const request = await getRequest(unit.tx, grant.requestId);
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
  for (const event of events) {
    const facts = await factsOf(context, unit, event);
    if (!facts) continue;
    for (const rule of config.rules) {
      if (!ruleMatches(context, rule, event, facts)) continue;
      const recipients = new Set<string>();
      if (rule.to.audience) {
        for (const name of await enabledUserNamesIn(unit.tx, facts.audience.users, facts.audience.groups)) {
          if (!facts.audience.exclude.includes(name)) recipients.add(name);
        }
      }
      for (const name of await enabledUserNamesIn(unit.tx, rule.to.users, rule.to.groups)) recipients.add(name);
      for (const address of rule.to.addresses) recipients.add(`address:${address}`);
      for (const channel of rule.channels) {
        const type = config.channels.get(channel)?.type;
        if (!type) continue;
        for (const recipient of recipients) {
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
