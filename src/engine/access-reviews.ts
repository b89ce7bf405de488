import {
  checkReviewDecision,
  defaultDecision,
  outcomeOf,
  proposedChange,
  type ReviewCampaignSettings,
  type ReviewDecisionValue,
} from '../domain/access-review.js';
import { LapseError } from '../domain/errors.js';
import { newId } from '../domain/ids.js';
import { viaData, type Principal } from '../domain/principal.js';
import {
  closeReviewCampaign,
  completeJob,
  ensureJob,
  getReviewCampaign,
  insertReviewCampaign,
  insertReviewItems,
  latestReviewCampaign,
  listReviewCampaigns,
  listReviewItems,
  recordReviewDecision,
  reviewProgress,
  rescheduleJob,
  scheduleJob,
  setReviewOutcome,
  type Job,
  type ReviewCampaign,
  type ReviewItem,
} from '../store/index.js';
import { gatherReviewItems, MAX_ITEMS } from './access-review-items.js';
import { auditRefusal, transact, type EngineContext, type UnitOfWork } from './context.js';
import { removeFindingAccess } from './reconciliation.js';

/**
 * Access-review campaigns (docs/reviews.md): open (on schedule or by an admin), decide, remind,
 * close at the deadline with the configured default. A "remove" on standing access goes to the
 * target through the connector after the decision commits; on eligible or used access it records
 * a proposed config change the admin applies (Lapse never edits lapse.yaml).
 */

export interface OpenedCampaign {
  readonly campaign: ReviewCampaign;
  readonly items: number;
}

/** Opens a campaign now: its items are gathered and stored, reviewers told, the deadline booked. */
export async function openCampaign(
  context: EngineContext,
  settings: ReviewCampaignSettings,
  options: { readonly origin: 'config' | 'api'; readonly by: string },
): Promise<OpenedCampaign> {
  const config = context.config();
  return transact(context, async (unit) => {
    const id = newId('reviewCampaign');
    const period = { from: new Date(unit.now.getTime() - settings.periodMs), to: unit.now };
    const items = await gatherReviewItems(unit.tx, config, settings, id, period);
    if (items.length > MAX_ITEMS) {
      throw new LapseError('validation_failed', `review campaign ${settings.name} would hold ${items.length} items, more than ${MAX_ITEMS}`, {
        where: `reviews[name=${settings.name}].scope`,
        hint: 'Narrow the scope (targets, policies, groups) or split it into several campaigns; nothing was opened.',
      });
    }
    const deadline = new Date(unit.now.getTime() + settings.durationMs);
    const campaign: ReviewCampaign = {
      id,
      name: settings.name,
      origin: options.origin,
      status: 'open',
      settings,
      periodFrom: period.from,
      periodTo: period.to,
      openedAt: unit.now,
      openedBy: options.by,
      deadline,
      configVersion: config.version,
      closedAt: null,
      closedBy: null,
    };
    await insertReviewCampaign(unit.tx, campaign);
    await insertReviewItems(unit.tx, items);
    const firstDue = settings.remindEveryMs !== null ? Math.min(settings.remindEveryMs, settings.durationMs) : settings.durationMs;
    await scheduleJob(unit.tx, 'review_due', id, { at: new Date(unit.now.getTime() + firstDue) });
    unit.wake();
    await unit.audit({
      action: 'review.opened',
      actor: options.by,
      subject: id,
      data: {
        name: settings.name,
        origin: options.origin,
        items: items.length,
        deadline: deadline.toISOString(),
        periodFrom: period.from.toISOString(),
        reviewers: reviewerUnion(items),
        configVersion: config.version,
      },
    });
    return { campaign, items: items.length };
  });
}

function reviewerUnion(items: readonly Pick<ReviewItem, 'reviewers'>[]): { users: string[]; groups: string[] } {
  return {
    users: [...new Set(items.flatMap((i) => i.reviewers.users))].sort().slice(0, 200),
    groups: [...new Set(items.flatMap((i) => i.reviewers.groups))].sort().slice(0, 200),
  };
}

/** Books the next opening of every campaign in lapse.yaml, counted from its last opening (start, reload). */
export async function scheduleReviews(context: EngineContext): Promise<void> {
  const campaigns = context.config().reviews;
  if (campaigns.length === 0) return;
  await transact(context, async (unit) => {
    for (const settings of campaigns) {
      const last = await latestReviewCampaign(unit.tx, settings.name);
      const everyMs = settings.everyMs ?? Number.MAX_SAFE_INTEGER;
      const delay = last ? Math.max(0, last.openedAt.getTime() + everyMs - unit.now.getTime()) : 0;
      await ensureJob(unit.tx, 'review_open', settings.name, Math.min(delay, 2 ** 31));
    }
    unit.wake();
  });
}

/** The scheduler's `review_open` handler: opens the campaign of that name, books the next one. */
export async function reviewOpenJob(context: EngineContext, job: Job, worker: number): Promise<void> {
  const settings = context.config().reviews.find((c) => c.name === job.subjectId);
  if (!settings || settings.everyMs === null) {
    // Removed from lapse.yaml: a reload that brings it back books it again.
    await transact(context, (unit) => completeJob(unit.tx, job, worker));
    return;
  }
  const last = await latestReviewCampaign(context.store.db, settings.name);
  // NB. Due again before its time (a replica that booked it from an older config): only book.
  const early = last !== undefined && Date.now() - last.openedAt.getTime() < settings.everyMs - 60_000;
  if (!early) await openCampaign(context, settings, { origin: 'config', by: 'system' });
  await transact(context, (unit) => rescheduleJob(unit.tx, job, worker, settings.everyMs ?? 0));
}

/** The scheduler's `review_due` handler: a reminder before the deadline, the close at it. */
export async function reviewDueJob(context: EngineContext, job: Job, worker: number): Promise<void> {
  const campaign = await getReviewCampaign(context.store.db, job.subjectId);
  if (!campaign || campaign.status === 'closed') {
    await transact(context, (unit) => completeJob(unit.tx, job, worker));
    return;
  }
  const remaining = await transact(context, async (unit) => {
    const left = campaign.deadline.getTime() - unit.now.getTime();
    if (left <= 0) return 0;
    const pending = await listReviewItems(unit.tx, { campaignId: campaign.id, undecided: true, limit: 10_000 });
    if (pending.length > 0) {
      await unit.audit({
        action: 'review.reminder',
        actor: 'system',
        subject: campaign.id,
        data: {
          name: campaign.name,
          pending: pending.length,
          deadline: campaign.deadline.toISOString(),
          reviewers: reviewerUnion(pending),
          round: job.attempts + 1,
        },
      });
    }
    const next = Math.min(campaign.settings.remindEveryMs ?? left, left);
    await rescheduleJob(unit.tx, job, worker, next);
    return left;
  });
  if (remaining === 0) {
    await closeCampaign(context, { campaignId: campaign.id, by: 'system' });
    await transact(context, (unit) => completeJob(unit.tx, job, worker));
  }
}

export interface DecideInput {
  readonly itemIds: readonly string[];
  readonly decision: ReviewDecisionValue;
  readonly justification: string;
  readonly by: Principal;
}

export interface DecideResult {
  readonly items: ReviewItem[];
}

/**
 * Records one decision on one or more items (bulk decide with one justification). All or nothing:
 * one item the reviewer may not decide refuses the whole batch. Removals of standing access are
 * made at the target afterwards, each recorded on its item.
 */
export async function decideReviewItems(context: EngineContext, input: DecideInput): Promise<DecideResult> {
  const { by, decision } = input;
  const justification = input.justification.trim();
  const ids = [...new Set(input.itemIds)];
  let refusal: LapseError | undefined;
  const decided = await transact(context, async (unit) => {
    const items = await listReviewItems(unit.tx, { ids }, { forUpdate: true });
    const found = new Map(items.map((i) => [i.id, i]));
    const campaigns = new Map<string, ReviewCampaign>();
    for (const id of ids) {
      const item = found.get(id);
      if (!item)
        throw new LapseError('not_found', `there is no review item ${id} for you to decide`, {
          where: id,
          hint: 'List your queue with `lapse review ls`; nothing was recorded.',
        });
      const campaign = campaigns.get(item.campaignId) ?? (await getReviewCampaign(unit.tx, item.campaignId));
      if (!campaign) throw new LapseError('not_found', `there is no review item ${id} for you to decide`, { where: id });
      campaigns.set(campaign.id, campaign);
      try {
        checkReviewDecision(item, by, decision, justification);
      } catch (error) {
        if (error instanceof LapseError && error.code === 'self_approval') refusal = error;
        throw error;
      }
      if (campaign.status !== 'open') {
        throw new LapseError('invalid_transition', `review campaign ${campaign.name} (${campaign.id}) is closed`, {
          where: id,
          hint: 'Decisions are taken while a campaign is open; nothing was recorded.',
        });
      }
    }
    const results: ReviewItem[] = [];
    for (const id of ids)
      results.push(await recordDecision(context, unit, found.get(id)!, decision, { justification, by: by.id, byDefault: false, principal: by }));
    return results;
  }).catch(async (error: unknown) => {
    if (refusal) {
      await auditRefusal(context, {
        action: 'review.decision_refused',
        actor: by.id,
        subject: refusal.details.where ?? '',
        data: { reason: 'own access', decision, severity: 'medium', ...viaData(by) },
      });
    }
    throw error;
  });
  return { items: await carryOutRemovals(context, decided, by.id) };
}

async function recordDecision(
  context: EngineContext,
  unit: UnitOfWork,
  item: ReviewItem,
  decision: ReviewDecisionValue,
  how: { justification: string; by: string; byDefault: boolean; principal?: Principal },
): Promise<ReviewItem> {
  const outcome = outcomeOf(item.kind, decision);
  const detail: Record<string, unknown> = {};
  if (outcome === 'change_proposed') {
    const via = item.evidence.eligibleVia as { policy: string; user: boolean; groups: string[] } | null | undefined;
    Object.assign(detail, proposedChange(item.principalId, { policy: via?.policy ?? null, viaUser: via?.user ?? false, viaGroups: via?.groups ?? [] }), {
      file: context.config().source,
    });
  }
  await recordReviewDecision(unit.tx, item.id, {
    decision,
    byDefault: how.byDefault,
    justification: how.justification || null,
    decidedBy: how.by,
    decidedAt: unit.now,
    outcome,
    detail,
  });
  await unit.audit({
    action: 'review.decided',
    actor: how.by,
    subject: item.id,
    data: {
      campaign: item.campaignId,
      kind: item.kind,
      principal: item.principalId,
      target: item.target,
      entitlement: item.entitlement,
      decision,
      byDefault: how.byDefault,
      justification: how.justification.slice(0, 2000),
      outcome,
      ...detail,
      ...(how.principal ? viaData(how.principal) : {}),
      severity: decision === 'remove' ? 'medium' : 'info',
    },
  });
  return {
    ...item,
    decision,
    byDefault: how.byDefault,
    justification: how.justification || null,
    decidedBy: how.by,
    decidedAt: unit.now,
    outcome,
    outcomeDetail: detail,
  };
}

/** Removes the standing access of items decided "remove" (outside any transaction), recording each outcome. */
async function carryOutRemovals(context: EngineContext, items: readonly ReviewItem[], actor: string): Promise<ReviewItem[]> {
  const done: ReviewItem[] = [];
  for (const item of items) {
    if (item.kind !== 'standing' || item.decision !== 'remove' || !item.findingId) {
      done.push(item);
      continue;
    }
    let result: { removed: boolean; error: string | null };
    try {
      result = await removeFindingAccess(context, item.findingId, actor);
    } catch (error) {
      result = { removed: false, error: error instanceof Error ? error.message : String(error) };
    }
    const outcome = result.error === null ? 'removed' : 'remove_failed';
    const detail = result.error === null ? { finding: item.findingId } : { finding: item.findingId, error: result.error.slice(0, 1000) };
    await transact(context, async (unit) => {
      await setReviewOutcome(unit.tx, item.id, outcome, detail);
      await unit.audit({
        action: outcome === 'removed' ? 'review.access_removed' : 'review.removal_failed',
        actor,
        subject: item.id,
        data: {
          campaign: item.campaignId,
          target: item.target,
          entitlement: item.entitlement,
          principal: item.principalId,
          ...detail,
          severity: outcome === 'removed' ? 'medium' : 'high',
        },
      });
    });
    done.push({ ...item, outcome, outcomeDetail: { ...item.outcomeDetail, ...detail } });
  }
  return done;
}

export interface CloseResult {
  readonly campaign: ReviewCampaign;
  readonly defaulted: number;
  readonly counts: Record<string, number>;
}

/**
 * Closes a campaign: every unanswered item gets the configured default (recorded as such, by
 * `system`), then removals are carried out. By an admin before the deadline, or by the deadline.
 */
export async function closeCampaign(context: EngineContext, input: { campaignId: string; by: string }): Promise<CloseResult> {
  const { defaulted, campaign } = await transact(context, async (unit) => {
    const campaign = await getReviewCampaign(unit.tx, input.campaignId, { forUpdate: true });
    if (!campaign)
      throw new LapseError('not_found', `there is no review campaign ${input.campaignId}`, {
        where: input.campaignId,
        hint: 'List campaigns with `lapse review ls --campaigns`.',
      });
    if (campaign.status === 'closed') {
      throw new LapseError('invalid_transition', `review campaign ${campaign.name} (${campaign.id}) is already closed`, {
        where: campaign.id,
        hint: 'Nothing was changed.',
      });
    }
    const pending = await listReviewItems(unit.tx, { campaignId: campaign.id, undecided: true, limit: 20_000 }, { forUpdate: true });
    const decision = defaultDecision(campaign.settings.whenUnanswered);
    const defaulted: ReviewItem[] = [];
    for (const item of pending) {
      defaulted.push(
        await recordDecision(context, unit, item, decision, {
          justification: `unanswered at close: default ${campaign.settings.whenUnanswered}`,
          by: 'system',
          byDefault: true,
        }),
      );
    }
    await closeReviewCampaign(unit.tx, campaign.id, input.by, unit.now);
    await unit.audit({
      action: 'review.closed',
      actor: input.by,
      subject: campaign.id,
      data: { name: campaign.name, defaulted: defaulted.length, default: campaign.settings.whenUnanswered, early: unit.now < campaign.deadline },
    });
    return { defaulted, campaign: { ...campaign, status: 'closed' as const, closedAt: unit.now, closedBy: input.by } };
  });
  await carryOutRemovals(context, defaulted, input.by === 'system' ? 'system' : input.by);
  const items = await listReviewItems(context.store.db, { campaignId: campaign.id, limit: 20_000 });
  const counts: Record<string, number> = {};
  for (const item of items) counts[item.outcome] = (counts[item.outcome] ?? 0) + 1;
  return { campaign, defaulted: defaulted.length, counts };
}

export interface CampaignView extends ReviewCampaign {
  readonly total: number;
  readonly decided: number;
  readonly overdue: boolean;
}

/** Campaigns with their progress, newest first (admins and auditors). */
export async function listCampaigns(context: EngineContext, filter: { status?: 'open' | 'closed'; limit?: number } = {}): Promise<CampaignView[]> {
  const db = context.store.db;
  const campaigns = await listReviewCampaigns(db, filter);
  const progress = await reviewProgress(
    db,
    campaigns.map((c) => c.id),
  );
  const now = Date.now();
  return campaigns.map((c) => {
    const p = progress.get(c.id) ?? { total: 0, decided: 0 };
    return { ...c, ...p, overdue: c.status === 'open' && c.deadline.getTime() < now && p.decided < p.total };
  });
}

/** A reviewer's queue: undecided items of open campaigns they review, never their own access. */
export async function reviewQueue(context: EngineContext, reviewer: Principal, options: { campaignId?: string; limit?: number } = {}): Promise<ReviewItem[]> {
  const db = context.store.db;
  const open = new Set((await listReviewCampaigns(db, { status: 'open', limit: 1000 })).map((c) => c.id));
  const items = await listReviewItems(db, {
    undecided: true,
    reviewer: { id: reviewer.id, groups: reviewer.groups },
    ...(options.campaignId ? { campaignId: options.campaignId } : {}),
    limit: options.limit ?? 1000,
  });
  return items.filter((i) => open.has(i.campaignId) && i.principalId !== reviewer.id);
}

/** Every item of a campaign (admins and auditors; the access-review report). */
export async function campaignItems(context: EngineContext, campaignId: string): Promise<{ campaign: ReviewCampaign; items: ReviewItem[] }> {
  const campaign = await getReviewCampaign(context.store.db, campaignId);
  if (!campaign)
    throw new LapseError('not_found', `there is no review campaign ${campaignId}`, {
      where: campaignId,
      hint: 'List campaigns with `lapse review ls --campaigns`.',
    });
  return { campaign, items: await listReviewItems(context.store.db, { campaignId, limit: 20_000 }) };
}
