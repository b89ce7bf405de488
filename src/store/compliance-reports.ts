import { sql } from 'kysely';
import type { Executor } from './executor.js';

/**
 * The rows of the compliance reports (docs/compliance.md), each for a period [from, to). Bounded:
 * a report holds at most MAX_REPORT_ROWS rows and says so when the period held more.
 */
export const MAX_REPORT_ROWS = 50_000;

export type ReportRow = Record<string, string | number | boolean | null>;

const iso = (value: Date | string | null) => (value === null ? null : new Date(value).toISOString());

/** Every decision on every item of the campaigns opened in the period. */
export async function accessReviewRows(db: Executor, from: Date, to: Date): Promise<ReportRow[]> {
  const rows = await db
    .selectFrom('review_items as i')
    .innerJoin('review_campaigns as c', 'c.id', 'i.campaign_id')
    .select([
      'c.id as campaign_id',
      'c.name as campaign',
      'c.status as campaign_status',
      'c.deadline',
      'i.id as item',
      'i.kind',
      'i.principal_id',
      'i.target',
      'i.entitlement',
      'i.policy',
      'i.high_risk',
      'i.decision',
      'i.by_default',
      'i.decided_by',
      'i.decided_at',
      'i.justification',
      'i.outcome',
      'i.outcome_detail',
    ])
    .where('c.opened_at', '>=', from)
    .where('c.opened_at', '<', to)
    .orderBy('c.opened_at')
    .orderBy('c.id')
    .orderBy('i.principal_id')
    .orderBy('i.target')
    .orderBy('i.entitlement')
    .orderBy('i.kind')
    .orderBy('i.id')
    .limit(MAX_REPORT_ROWS + 1)
    .execute();
  return rows.map((r) => ({
    campaign: r.campaign,
    campaignId: r.campaign_id,
    campaignStatus: r.campaign_status,
    deadline: iso(r.deadline),
    item: r.item,
    kind: r.kind,
    person: r.principal_id,
    access: `${r.target}/${r.entitlement}`,
    policy: r.policy,
    highRisk: r.high_risk,
    decision: r.decision,
    byDefault: r.by_default,
    decidedBy: r.decided_by,
    decidedAt: iso(r.decided_at),
    justification: r.justification,
    outcome: r.outcome,
    change: typeof r.outcome_detail.change === 'string' ? r.outcome_detail.change : null,
  }));
}

/** Every request (and break-glass use) made in the period, with its approvers and its grant. */
export async function privilegedActivityRows(db: Executor, from: Date, to: Date, options: { breakGlassOnly?: boolean } = {}): Promise<ReportRow[]> {
  let query = db
    .selectFrom('requests as r')
    .leftJoin('grants as g', 'g.id', 'r.grant_id')
    .select([
      'r.id',
      'r.kind',
      'r.principal_id',
      'r.target',
      'r.entitlement',
      'r.status',
      'r.reason',
      'r.ticket',
      'r.policy',
      'r.duration_ms',
      'r.created_at',
      'r.decided_at',
      'r.reviewed_at',
      'r.reviewed_by',
      'g.id as grant_id',
      'g.status as grant_status',
      'g.activated_at',
      'g.ended_at',
      'g.end_reason',
      'g.ended_by',
      sql<string | null>`(SELECT string_agg(v.reviewer_id, ' ' ORDER BY v.created_at) FROM reviews v WHERE v.request_id = r.id AND v.decision = 'approve')`.as(
        'approvers',
      ),
    ])
    .where('r.created_at', '>=', from)
    .where('r.created_at', '<', to);
  if (options.breakGlassOnly) query = query.where('r.kind', '=', 'break_glass');
  const rows = await query
    .orderBy('r.created_at')
    .orderBy('r.id')
    .limit(MAX_REPORT_ROWS + 1)
    .execute();
  return rows.map((r) => ({
    request: r.id,
    kind: r.kind,
    person: r.principal_id,
    access: `${r.target}/${r.entitlement}`,
    status: r.status,
    policy: r.policy,
    reason: r.reason,
    ticket: r.ticket,
    approvers: r.approvers,
    requestedMinutes: Math.round(Number(r.duration_ms) / 60_000),
    requestedAt: iso(r.created_at),
    decidedAt: iso(r.decided_at),
    grant: r.grant_id,
    grantStatus: r.grant_status,
    activatedAt: iso(r.activated_at),
    endedAt: iso(r.ended_at),
    endReason: r.end_reason,
    endedBy: r.ended_by,
    ...(options.breakGlassOnly ? { reviewedAt: iso(r.reviewed_at), reviewedBy: r.reviewed_by } : {}),
  }));
}

/** Standing access found in the period (or still open from before) and what became of it. */
export async function standingAccessRows(db: Executor, from: Date, to: Date): Promise<ReportRow[]> {
  const rows = await db
    .selectFrom('findings')
    .selectAll()
    .where('kind', '=', 'standing')
    .where('first_seen_at', '<', to)
    .where((eb) => eb.or([eb('first_seen_at', '>=', from), eb('status', '=', 'open'), eb('resolved_at', '>=', from), eb('remediated_at', '>=', from)]))
    .orderBy('first_seen_at')
    .orderBy('id')
    .limit(MAX_REPORT_ROWS + 1)
    .execute();
  return rows.map((r) => ({
    finding: r.id,
    target: r.target,
    entitlement: r.entitlement,
    account: r.account,
    person: r.principal_id,
    status: r.status,
    firstSeen: iso(r.first_seen_at),
    lastSeen: iso(r.last_seen_at),
    resolvedAt: iso(r.resolved_at),
    remediatedAt: iso(r.remediated_at),
    remediatedBy: typeof r.detail.remediatedBy === 'string' ? r.detail.remediatedBy : null,
  }));
}

/** The config versions first loaded in the period (the audit log has each load, reload and rejection). */
export async function configVersionRows(db: Executor, from: Date, to: Date): Promise<ReportRow[]> {
  const rows = await db
    .selectFrom('config_versions')
    .selectAll()
    .where('first_loaded_at', '>=', from)
    .where('first_loaded_at', '<', to)
    .orderBy('first_loaded_at')
    .limit(MAX_REPORT_ROWS + 1)
    .execute();
  return rows.map((r) => ({ version: r.version, source: r.source, firstLoadedAt: iso(r.first_loaded_at) }));
}

/** The config version first loaded last before `at` (the one in force then). */
export async function configVersionAt(db: Executor, at: Date): Promise<string | null> {
  const row = await db
    .selectFrom('config_versions')
    .select('version')
    .where('first_loaded_at', '<=', at)
    .orderBy('first_loaded_at', 'desc')
    .limit(1)
    .executeTakeFirst();
  return row?.version ?? null;
}

/** The last audit event before `to` (its sequence number and hash): what the report's period ends on. */
export async function auditPositionBefore(db: Executor, to: Date): Promise<{ seq: number; hash: string } | null> {
  const row = await db
    .selectFrom('audit_events')
    .select(['seq', 'hash'])
    .where(sql<string>`(payload::jsonb ->> 'at')`, '<', to.toISOString())
    .orderBy('seq', 'desc')
    .limit(1)
    .executeTakeFirst();
  return row ? { seq: Number(row.seq), hash: row.hash } : null;
}

/** The first signed checkpoint at or after `seq`: the signature that covers every event up to it. */
export async function checkpointCovering(
  db: Executor,
  seq: number,
): Promise<{ seq: number; hash: string; keyId: string; signature: string; at: string } | null> {
  const row = await db.selectFrom('audit_checkpoints').selectAll().where('seq', '>=', String(seq)).orderBy('seq').limit(1).executeTakeFirst();
  return row ? { seq: Number(row.seq), hash: row.hash, keyId: row.key_id, signature: row.signature, at: new Date(row.created_at).toISOString() } : null;
}
