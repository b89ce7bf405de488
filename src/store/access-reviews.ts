import { sql, type Selectable } from 'kysely';
import type { ReviewCampaignSettings, ReviewDecisionValue, ReviewItemKind, ReviewOutcome } from '../domain/access-review.js';
import type { SubjectSet } from '../domain/principal.js';
import type { Executor } from './executor.js';
import type { ReviewCampaignsTable, ReviewItemsTable } from './schema.js';

/** Access-review campaigns and their items (docs/reviews.md). */

export interface ReviewCampaign {
  readonly id: string;
  readonly name: string;
  readonly origin: 'config' | 'api';
  readonly status: 'open' | 'closed';
  readonly settings: ReviewCampaignSettings;
  readonly periodFrom: Date;
  readonly periodTo: Date;
  readonly openedAt: Date;
  readonly openedBy: string;
  readonly deadline: Date;
  readonly configVersion: string;
  readonly closedAt: Date | null;
  readonly closedBy: string | null;
}

export interface ReviewItem {
  readonly id: string;
  readonly campaignId: string;
  readonly kind: ReviewItemKind;
  readonly principalId: string;
  readonly target: string;
  readonly entitlement: string;
  readonly policy: string | null;
  readonly findingId: string | null;
  readonly highRisk: boolean;
  readonly reviewers: SubjectSet;
  readonly evidence: Readonly<Record<string, unknown>>;
  readonly decision: ReviewDecisionValue | null;
  readonly byDefault: boolean;
  readonly justification: string | null;
  readonly decidedBy: string | null;
  readonly decidedAt: Date | null;
  readonly outcome: ReviewOutcome;
  readonly outcomeDetail: Readonly<Record<string, unknown>>;
}

export type NewReviewItem = Omit<ReviewItem, 'decision' | 'byDefault' | 'justification' | 'decidedBy' | 'decidedAt' | 'outcome' | 'outcomeDetail'>;

const date = (value: Date | string | null) => (value === null ? null : new Date(value));

function toCampaign(row: Selectable<ReviewCampaignsTable>): ReviewCampaign {
  return {
    id: row.id,
    name: row.name,
    origin: row.origin,
    status: row.status,
    settings: row.settings as unknown as ReviewCampaignSettings,
    periodFrom: new Date(row.period_from),
    periodTo: new Date(row.period_to),
    openedAt: new Date(row.opened_at),
    openedBy: row.opened_by,
    deadline: new Date(row.deadline),
    configVersion: row.config_version,
    closedAt: date(row.closed_at),
    closedBy: row.closed_by,
  };
}

function toItem(row: Selectable<ReviewItemsTable>): ReviewItem {
  return {
    id: row.id,
    campaignId: row.campaign_id,
    kind: row.kind,
    principalId: row.principal_id,
    target: row.target,
    entitlement: row.entitlement,
    policy: row.policy,
    findingId: row.finding_id,
    highRisk: row.high_risk,
    reviewers: row.reviewers,
    evidence: row.evidence,
    decision: row.decision,
    byDefault: row.by_default,
    justification: row.justification,
    decidedBy: row.decided_by,
    decidedAt: date(row.decided_at),
    outcome: row.outcome,
    outcomeDetail: row.outcome_detail,
  };
}

export async function insertReviewCampaign(tx: Executor, campaign: Omit<ReviewCampaign, 'status' | 'closedAt' | 'closedBy'>): Promise<void> {
  await tx
    .insertInto('review_campaigns')
    .values({
      id: campaign.id,
      name: campaign.name,
      origin: campaign.origin,
      status: 'open',
      settings: JSON.stringify(campaign.settings),
      period_from: campaign.periodFrom,
      period_to: campaign.periodTo,
      opened_at: campaign.openedAt,
      opened_by: campaign.openedBy,
      deadline: campaign.deadline,
      config_version: campaign.configVersion,
      closed_at: null,
      closed_by: null,
    })
    .execute();
}

export async function insertReviewItems(tx: Executor, items: readonly NewReviewItem[]): Promise<void> {
  for (let i = 0; i < items.length; i += 500) {
    await tx
      .insertInto('review_items')
      .values(
        items.slice(i, i + 500).map((item) => ({
          id: item.id,
          campaign_id: item.campaignId,
          kind: item.kind,
          principal_id: item.principalId,
          target: item.target,
          entitlement: item.entitlement,
          policy: item.policy,
          finding_id: item.findingId,
          high_risk: item.highRisk,
          reviewers: JSON.stringify(item.reviewers),
          evidence: JSON.stringify(item.evidence),
          decision: null,
          justification: null,
          decided_by: null,
          decided_at: null,
          outcome: 'pending' as const,
          outcome_detail: '{}',
        })),
      )
      .execute();
  }
}

export async function getReviewCampaign(db: Executor, id: string, options: { forUpdate?: boolean } = {}): Promise<ReviewCampaign | undefined> {
  let query = db.selectFrom('review_campaigns').selectAll().where('id', '=', id);
  if (options.forUpdate) query = query.forUpdate();
  const row = await query.executeTakeFirst();
  return row ? toCampaign(row) : undefined;
}

/** The most recently opened campaign of a name (the schedule counts from it). */
export async function latestReviewCampaign(db: Executor, name: string): Promise<ReviewCampaign | undefined> {
  const row = await db.selectFrom('review_campaigns').selectAll().where('name', '=', name).orderBy('opened_at', 'desc').limit(1).executeTakeFirst();
  return row ? toCampaign(row) : undefined;
}

export interface CampaignFilter {
  readonly status?: 'open' | 'closed';
  /** Campaigns closed (or, when open, opened) at or after this. */
  readonly from?: Date;
  readonly to?: Date;
  readonly limit?: number;
}

/** Newest first. */
export async function listReviewCampaigns(db: Executor, filter: CampaignFilter = {}): Promise<ReviewCampaign[]> {
  let query = db.selectFrom('review_campaigns').selectAll();
  if (filter.status) query = query.where('status', '=', filter.status);
  if (filter.from) query = query.where('opened_at', '>=', filter.from);
  if (filter.to) query = query.where('opened_at', '<', filter.to);
  const rows = await query
    .orderBy('opened_at', 'desc')
    .orderBy('id', 'desc')
    .limit(Math.max(1, Math.min(filter.limit ?? 100, 1000)))
    .execute();
  return rows.map(toCampaign);
}

export interface ItemFilter {
  readonly campaignId?: string;
  readonly ids?: readonly string[];
  readonly undecided?: boolean;
  /** Items whose reviewers include this user or one of these groups. */
  readonly reviewer?: { readonly id: string; readonly groups: readonly string[] };
  readonly limit?: number;
}

export async function listReviewItems(db: Executor, filter: ItemFilter = {}, options: { forUpdate?: boolean } = {}): Promise<ReviewItem[]> {
  let query = db.selectFrom('review_items').selectAll();
  if (filter.campaignId) query = query.where('campaign_id', '=', filter.campaignId);
  if (filter.ids) {
    if (filter.ids.length === 0) return [];
    query = query.where('id', 'in', [...filter.ids]);
  }
  if (filter.undecided) query = query.where('decision', 'is', null);
  if (filter.reviewer) {
    const { id, groups } = filter.reviewer;
    query = query.where((eb) =>
      eb.or([sql<boolean>`reviewers->'users' ? ${id}`, ...(groups.length > 0 ? [sql<boolean>`reviewers->'groups' ?| ${sql.val([...groups])}::text[]`] : [])]),
    );
  }
  let ordered = query.orderBy('id').limit(Math.max(1, Math.min(filter.limit ?? 1000, 10_000)));
  if (options.forUpdate) ordered = ordered.forUpdate();
  return (await ordered.execute()).map(toItem);
}

export async function recordReviewDecision(
  tx: Executor,
  id: string,
  decision: {
    decision: ReviewDecisionValue;
    byDefault: boolean;
    justification: string | null;
    decidedBy: string;
    decidedAt: Date;
    outcome: ReviewOutcome;
    detail: Record<string, unknown>;
  },
): Promise<void> {
  await tx
    .updateTable('review_items')
    .set({
      decision: decision.decision,
      by_default: decision.byDefault,
      justification: decision.justification,
      decided_by: decision.decidedBy,
      decided_at: decision.decidedAt,
      outcome: decision.outcome,
      outcome_detail: JSON.stringify(decision.detail),
    })
    .where('id', '=', id)
    .where('decision', 'is', null)
    .execute();
}

export async function setReviewOutcome(tx: Executor, id: string, outcome: ReviewOutcome, detail: Record<string, unknown>): Promise<void> {
  await tx
    .updateTable('review_items')
    .set({ outcome, outcome_detail: sql`outcome_detail || ${JSON.stringify(detail)}::jsonb` })
    .where('id', '=', id)
    .execute();
}

export async function closeReviewCampaign(tx: Executor, id: string, by: string, at: Date): Promise<boolean> {
  const result = await tx
    .updateTable('review_campaigns')
    .set({ status: 'closed', closed_at: at, closed_by: by })
    .where('id', '=', id)
    .where('status', '=', 'open')
    .executeTakeFirst();
  return Number(result.numUpdatedRows) === 1;
}

/** Items decided and undecided, by campaign (progress). */
export async function reviewProgress(db: Executor, campaignIds: readonly string[]): Promise<Map<string, { total: number; decided: number }>> {
  const progress = new Map<string, { total: number; decided: number }>(campaignIds.map((id) => [id, { total: 0, decided: 0 }]));
  if (campaignIds.length === 0) return progress;
  const rows = await db
    .selectFrom('review_items')
    .select(['campaign_id', sql<string>`count(*)`.as('total'), sql<string>`count(decision)`.as('decided')])
    .where('campaign_id', 'in', [...campaignIds])
    .groupBy('campaign_id')
    .execute();
  for (const row of rows) progress.set(row.campaign_id, { total: Number(row.total), decided: Number(row.decided) });
  return progress;
}

/** One person's use of one entitlement in a period, as review evidence. */
export interface EntitlementUse {
  readonly principalId: string;
  readonly target: string;
  readonly entitlement: string;
  readonly count: number;
  readonly breakGlass: number;
  readonly lastUse: Date;
  readonly requestIds: readonly string[];
}

/** Grants created in [from, to), grouped by person and entitlement (at most 50 request ids each). */
export async function entitlementUse(db: Executor, from: Date, to: Date): Promise<EntitlementUse[]> {
  const rows = await db
    .selectFrom('grants')
    .select([
      'principal_id',
      'target',
      'entitlement',
      sql<string>`count(*)`.as('n'),
      sql<string>`count(*) FILTER (WHERE break_glass)`.as('bg'),
      sql<Date>`max(created_at)`.as('last'),
      sql<string[]>`(array_agg(request_id ORDER BY created_at DESC))[1:50]`.as('requests'),
    ])
    .where('created_at', '>=', from)
    .where('created_at', '<', to)
    .groupBy(['principal_id', 'target', 'entitlement'])
    .orderBy('principal_id')
    .limit(50_000)
    .execute();
  return rows.map((r) => ({
    principalId: r.principal_id,
    target: r.target,
    entitlement: r.entitlement,
    count: Number(r.n),
    breakGlass: Number(r.bg),
    lastUse: new Date(r.last),
    requestIds: r.requests,
  }));
}

/** The reasons and approvers of requests (evidence), by request id. */
export async function requestEvidence(db: Executor, requestIds: readonly string[]): Promise<Map<string, { reason: string; approvers: string[] }>> {
  const evidence = new Map<string, { reason: string; approvers: string[] }>();
  if (requestIds.length === 0) return evidence;
  for (let i = 0; i < requestIds.length; i += 1000) {
    const chunk = requestIds.slice(i, i + 1000);
    const requests = await db.selectFrom('requests').select(['id', 'reason']).where('id', 'in', chunk).execute();
    for (const r of requests) evidence.set(r.id, { reason: r.reason, approvers: [] });
    const reviews = await db
      .selectFrom('reviews')
      .select(['request_id', 'reviewer_id'])
      .where('request_id', 'in', chunk)
      .where('decision', '=', 'approve')
      .execute();
    for (const r of reviews) evidence.get(r.request_id)?.approvers.push(r.reviewer_id);
  }
  return evidence;
}

/** Every enabled user with their groups (policy subjects are resolved to people from these). */
export async function enabledPeople(db: Executor): Promise<{ name: string; groups: string[] }[]> {
  const rows = await db
    .selectFrom('users')
    .select(['name', 'groups'])
    .where('disabled_at', 'is', null)
    .where('kind', '=', 'user')
    .orderBy('name')
    .limit(100_000)
    .execute();
  return rows.map((r) => ({ name: r.name, groups: r.groups }));
}
