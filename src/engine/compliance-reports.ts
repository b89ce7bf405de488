import type { KeyObject } from 'node:crypto';
import { verifyAuditChain } from '../audit/index.js';
import { LapseError } from '../domain/errors.js';
import {
  accessReviewRows,
  auditPositionBefore,
  checkpointCovering,
  configVersionAt,
  getAuditHead,
  MAX_REPORT_ROWS,
  privilegedActivityRows,
  selectAuditPayloads,
  standingAccessRows,
  type ReportRow,
} from '../store/index.js';
import { transact, type EngineContext } from './context.js';

/**
 * Compliance evidence (docs/compliance.md): one report per kind over a period, with the proof an
 * auditor files beside it: the audit chain's head, the last event of the period and the signed
 * checkpoint covering it, the result of verifying the whole chain now, and the config version in
 * force at the end of the period.
 */
export const REPORT_KINDS = ['access-reviews', 'privileged-activity', 'break-glass', 'standing-access', 'config-changes'] as const;
export type ReportKind = (typeof REPORT_KINDS)[number];

const TITLES: Record<ReportKind, string> = {
  'access-reviews': 'Access review results',
  'privileged-activity': 'Privileged access activity',
  'break-glass': 'Break-glass uses and their reviews',
  'standing-access': 'Standing access findings and remediation',
  'config-changes': 'Configuration changes',
};

/** A period longer than this is refused (split it): the report reads every row of it. */
export const MAX_REPORT_PERIOD_MS = 2 * 366 * 86_400_000;

export interface ReportCover {
  readonly auditHead: { readonly seq: number; readonly hash: string } | null;
  /** The last audit event before the period's end. */
  readonly periodEnd: { readonly seq: number; readonly hash: string } | null;
  /** The first signed checkpoint at or after the period's last event; null: none signed yet. */
  readonly checkpoint: { readonly seq: number; readonly hash: string; readonly keyId: string; readonly signature: string; readonly at: string } | null;
  readonly verify: { readonly ok: boolean; readonly events: number; readonly problems: number; readonly checkpointKeyKnown: boolean };
  /** The config version in force at the end of the period, and now. */
  readonly configVersion: string | null;
  readonly configVersionNow: string;
}

export interface ComplianceReport {
  readonly kind: ReportKind;
  readonly title: string;
  readonly from: Date;
  readonly to: Date;
  readonly generatedAt: Date;
  readonly generatedBy: string;
  readonly columns: readonly string[];
  readonly rows: readonly ReportRow[];
  /** The period held more than MAX_REPORT_ROWS rows: narrow it. */
  readonly truncated: boolean;
  readonly summary: Readonly<Record<string, number>>;
  readonly cover: ReportCover;
}

async function rowsOf(context: EngineContext, kind: ReportKind, from: Date, to: Date): Promise<ReportRow[]> {
  const db = context.store.db;
  switch (kind) {
    case 'access-reviews':
      return accessReviewRows(db, from, to);
    case 'privileged-activity':
      return privilegedActivityRows(db, from, to);
    case 'break-glass':
      return privilegedActivityRows(db, from, to, { breakGlassOnly: true });
    case 'standing-access':
      return standingAccessRows(db, from, to);
    case 'config-changes': {
      const payloads = await selectAuditPayloads(db, { action: 'config.*', since: from, until: to, ascending: true, limit: MAX_REPORT_ROWS + 1 });
      return payloads.map((payload) => {
        const event = JSON.parse(payload) as { at: string; action: string; actor: string; data?: Record<string, unknown> };
        const data = event.data ?? {};
        const str = (value: unknown) => (typeof value === 'string' ? value : null);
        return {
          at: event.at,
          action: event.action,
          actor: event.actor,
          version: str(data.version) ?? str(data.inForce),
          previous: str(data.previous),
          source: str(data.source),
          error: str(data.error)?.slice(0, 500) ?? null,
        };
      });
    }
  }
}

/** Counts an auditor reads first (the PDF's summary). */
function summarise(kind: ReportKind, rows: readonly ReportRow[]): Record<string, number> {
  const summary: Record<string, number> = { rows: rows.length };
  const count = (field: string) => {
    for (const row of rows) {
      const key = `${field}: ${String(row[field] ?? 'none')}`;
      summary[key] = (summary[key] ?? 0) + 1;
    }
  };
  if (kind === 'access-reviews') {
    count('decision');
    count('outcome');
    summary['decided by default'] = rows.filter((r) => r.byDefault === true).length;
  } else if (kind === 'privileged-activity' || kind === 'break-glass') {
    count('kind');
    count('status');
    if (kind === 'break-glass') summary['not yet reviewed'] = rows.filter((r) => r.reviewedAt === null).length;
  } else if (kind === 'standing-access') {
    count('status');
  } else {
    count('action');
  }
  return summary;
}

export interface ReportInput {
  readonly kind: ReportKind;
  readonly from: Date;
  readonly to: Date;
  readonly by: string;
  /** Checkpoint public keys for the verification (as `lapse audit verify` uses). */
  readonly publicKeys: readonly KeyObject[];
}

/** Builds one report; audited (`report.generated`) so the evidence itself leaves a trace. */
export async function generateReport(context: EngineContext, input: ReportInput): Promise<ComplianceReport> {
  const { kind, from, to } = input;
  if (!(from < to))
    throw new LapseError('validation_failed', 'the report period is empty: --from must be before --to', {
      where: 'from',
      hint: 'e.g. --from 2026-07-01 --to 2027-01-01',
    });
  if (to.getTime() - from.getTime() > MAX_REPORT_PERIOD_MS) {
    throw new LapseError('validation_failed', 'the report period is longer than two years', { where: 'to', hint: 'Split it into yearly reports.' });
  }
  const db = context.store.db;
  const rows = await rowsOf(context, kind, from, to);
  const truncated = rows.length > MAX_REPORT_ROWS;
  const kept = truncated ? rows.slice(0, MAX_REPORT_ROWS) : rows;
  const verify = await verifyAuditChain(db, { publicKeys: input.publicKeys });
  const head = await getAuditHead(db);
  const periodEnd = await auditPositionBefore(db, to);
  const cover: ReportCover = {
    auditHead: head ? { seq: Number(head.seq), hash: head.hash } : null,
    periodEnd,
    checkpoint: periodEnd ? await checkpointCovering(db, periodEnd.seq) : null,
    verify: {
      ok: verify.ok,
      events: verify.events,
      problems: verify.problems.length + verify.problemsOmitted,
      checkpointKeyKnown: input.publicKeys.length > 0,
    },
    configVersion: await configVersionAt(db, to),
    configVersionNow: context.config().version,
  };
  const generatedAt = new Date();
  const columns = kept[0] ? Object.keys(kept[0]) : [];
  const report: ComplianceReport = {
    kind,
    title: TITLES[kind],
    from,
    to,
    generatedAt,
    generatedBy: input.by,
    columns,
    rows: kept,
    truncated,
    summary: summarise(kind, kept),
    cover,
  };
  await transact(context, (unit) =>
    unit.audit({
      action: 'report.generated',
      actor: input.by,
      data: {
        kind,
        from: from.toISOString(),
        to: to.toISOString(),
        rows: kept.length,
        truncated,
        auditHead: cover.auditHead?.hash ?? null,
        verified: verify.ok,
      },
    }),
  );
  return report;
}
