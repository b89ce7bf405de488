import type { TargetConfig } from '../config/types.js';
import { connectorEntitlements, type Connector, type CurrentAccess } from '../connectors/index.js';
import { LapseError } from '../domain/errors.js';
import { compareAccess, coveringGrant, type MissingAccess, type ObservedAccess, type StandingAccess } from '../domain/reconciliation.js';
import {
  annotateFinding,
  closeFinding,
  completeJob,
  ensureJob,
  findingKey,
  finishReconcileRun,
  findingsOfRun,
  getFinding,
  grantsForReconciliation,
  insertFinding,
  openFindingsForUpdate,
  pruneReconcileRuns,
  refreshFindings,
  rescheduleJob,
  startReconcileRun,
  type Finding,
  type Job,
  type ObservedFinding,
} from '../store/index.js';
import { transact, type EngineContext, type UnitOfWork } from './context.js';
import { callConnector, errorMessage } from './target-calls.js';

/**
 * Reconciliation: what a target really has, compared with what Lapse granted. Same shape as the
 * other target work: (1) a transaction records the run's start, (2) the listing, outside any
 * transaction, with a deadline, (3) a transaction compares and records findings, (4) with
 * `remediate`, each removal is re-checked in a transaction, made outside one, and recorded.
 */

/** Listings longer than this are refused: a connector bug or a target Lapse should not scan whole. */
export const MAX_LISTED = 100_000;
/**
 * Removals per run, and the time they may take: the rest stay open findings and are removed by the
 * next run. Keeps a run well inside its job's lease, so no other replica takes the job over.
 */
export const MAX_REMEDIATIONS_PER_RUN = 100;
const REMEDIATION_BUDGET_MS = 60_000;
const MAX_FIELD = 1024;
/** How soon a target is looked at again after a removal may have hit a grant provisioned meanwhile. */
const RERUN_AFTER_RACE_MS = 1_000;

export interface ReconcileOptions {
  readonly trigger: 'schedule' | 'manual';
  /** Who asked: `system` for the scheduler, the admin's id, or `cli:<user>`. */
  readonly actor: string;
  /** Overrides the target's `reconcile.remediate` for this run. */
  readonly remediate?: boolean;
}

export interface ReconcileReport {
  readonly target: string;
  readonly runId: string;
  readonly trigger: 'schedule' | 'manual';
  readonly remediate: boolean;
  readonly startedAt: Date;
  readonly finishedAt: Date;
  /** Why the run could not compare (the listing failed); null when it did. */
  readonly error: string | null;
  readonly listed: number;
  readonly covered: number;
  /** Entries the connector returned that were not usable (empty or oversized fields). */
  readonly invalid: number;
  readonly opened: number;
  readonly resolved: number;
  readonly remediated: number;
  /**
   * Removals that a grant provisioned at the same moment may have been hit by: the target is due
   * to be reconciled again at once so such a grant's missing access is reported.
   */
  readonly raced: number;
  /** The target's findings after the run: open ones, plus those this run remediated. */
  readonly findings: Finding[];
}

interface Resolved {
  readonly target: TargetConfig;
  readonly connector: Connector;
}

function resolveTarget(context: EngineContext, name: string): Resolved {
  const target = context.config().targets.get(name);
  if (!target) {
    throw new LapseError('not_found', `there is no target ${name}`, { where: name, hint: 'Check the name against the targets in lapse.yaml.' });
  }
  const connector = context.connectors.get(target.connector);
  if (!connector) {
    throw new LapseError('config_invalid', `target ${name} uses connector "${target.connector}", which this Lapse does not have`, {
      where: `targets.${name}.connector`,
      hint: `Known connectors: ${context.connectors.types().join(', ')}.`,
    });
  }
  return { target, connector };
}

/**
 * Keeps only entries whose fields are usable strings (non-empty, bounded, no NUL, which PostgreSQL
 * text cannot hold); counts the rest. An empty grant id means none.
 */
function usableEntries(listed: readonly CurrentAccess[], keyOf: (entry: CurrentAccess) => string | null): { entries: ObservedAccess[]; invalid: number } {
  const entries: ObservedAccess[] = [];
  let invalid = 0;
  const field = (value: unknown) => typeof value === 'string' && value.length > 0 && value.length <= MAX_FIELD && !value.includes('\u0000');
  for (const entry of listed) {
    const grantOk = entry.grantId === null || entry.grantId === undefined || entry.grantId === '' || field(entry.grantId);
    if (field(entry.account) && field(entry.principalId) && field(entry.entitlement) && grantOk) {
      const grantId = entry.grantId || null;
      entries.push({
        account: entry.account,
        principalId: entry.principalId,
        entitlement: entry.entitlement,
        grantId,
        accessKey: grantId === null ? keyOf(entry) : null,
      });
    } else {
      invalid++;
    }
  }
  return { entries, invalid };
}

/**
 * The access key a grant of the entry's entitlement to the entry's principal would have, so access
 * that several entitlements share is covered by a grant of any of them. Null where the connector
 * cannot say (an unconfigured entitlement, a principal it could never grant to).
 */
function derivedAccessKey(connector: Connector, target: TargetConfig, entry: CurrentAccess): string | null {
  const entitlement = target.entitlements.get(entry.entitlement);
  if (!entitlement || entitlement.checkout) return null;
  try {
    return connector.accessKey({ grantId: '', principalId: entry.principalId, target, entitlement, durationMs: 1, notAfter: new Date(0), parameters: {} });
  } catch {
    return null;
  }
}

function standingFinding(target: string, standing: StandingAccess): ObservedFinding {
  const { access, reason, keep } = standing;
  return {
    target,
    entitlement: access.entitlement,
    account: access.account,
    kind: 'standing',
    principalId: access.principalId,
    grantId: null,
    detail: { reason, reportedGrantId: access.grantId, keep },
  };
}

function missingFinding(target: string, missing: MissingAccess): ObservedFinding {
  const { grant } = missing;
  return {
    target,
    entitlement: grant.entitlement,
    account: grant.principalId,
    kind: 'missing',
    principalId: grant.principalId,
    grantId: grant.id,
    detail: { activatedAt: grant.activatedAt?.toISOString() ?? null },
  };
}

const SEVERITY = { standing: 'high', missing: 'medium' } as const;

/** Reconciles one target now. A failed listing is recorded (run error, audit) and reported, not thrown. */
export async function reconcileTarget(context: EngineContext, targetName: string, options: ReconcileOptions): Promise<ReconcileReport> {
  const { target, connector } = resolveTarget(context, targetName);
  const settings = context.config().reconcile.targets.get(target.name);
  const remediate = options.remediate ?? settings?.remediate ?? false;
  const run = await transact(context, async (unit) => ({ id: await startReconcileRun(unit.tx, target.name, options.trigger, unit.now), startedAt: unit.now }));

  let listed: CurrentAccess[];
  try {
    listed = await callConnector(context, `listing of ${target.name}`, (signal) => connector.listAccess(target, signal));
    if (!Array.isArray(listed)) throw new LapseError('connector_failed', `${connector.type} returned no list of access for ${target.name}`);
    if (listed.length > MAX_LISTED) {
      throw new LapseError('connector_failed', `${target.name} listed ${listed.length} entries, more than the ${MAX_LISTED} reconciliation accepts`);
    }
  } catch (caught) {
    const error = errorMessage(caught);
    const finishedAt = await transact(context, async (unit) => {
      await finishReconcileRun(unit.tx, run.id, unit.now, {}, error);
      await unit.audit({ action: 'reconcile.failed', actor: options.actor, subject: target.name, data: { run: run.id, error, severity: 'high' } });
      return unit.now;
    });
    context.logger.warn({ target: target.name, error }, 'reconciliation could not list the target');
    const findings = await currentFindings(context, target.name, []);
    return {
      target: target.name,
      runId: run.id,
      trigger: options.trigger,
      remediate,
      startedAt: run.startedAt,
      finishedAt,
      error,
      listed: 0,
      covered: 0,
      invalid: 0,
      opened: 0,
      resolved: 0,
      remediated: 0,
      raced: 0,
      findings,
    };
  }

  const { entries, invalid } = usableEntries(listed, (entry) => derivedAccessKey(connector, target, entry));
  const recorded = await transact(context, (unit) => recordComparison(unit, target, entries, run, options));

  const removable = remediate ? recorded.removable.slice(0, MAX_REMEDIATIONS_PER_RUN) : [];
  const remediatedIds: string[] = [];
  let raced = 0;
  const deadline = Date.now() + REMEDIATION_BUDGET_MS;
  for (const candidate of removable) {
    if (Date.now() > deadline) break;
    const outcome = await removeStanding(context, target, connector, candidate, options.actor);
    if (outcome.removed) remediatedIds.push(candidate.finding.id);
    if (outcome.raced) raced++;
  }

  const finishedAt = await transact(context, async (unit) => {
    await finishReconcileRun(
      unit.tx,
      run.id,
      unit.now,
      { ...recorded.counts, remediated: remediatedIds.length },
      invalid > 0 ? `${invalid} listed entries were not usable (empty, NUL or over ${MAX_FIELD} characters)` : null,
    );
    await pruneReconcileRuns(unit.tx, target.name);
    return unit.now;
  });
  return {
    target: target.name,
    runId: run.id,
    trigger: options.trigger,
    remediate,
    startedAt: run.startedAt,
    finishedAt,
    error: null,
    listed: listed.length,
    covered: recorded.covered,
    invalid,
    opened: recorded.counts.opened,
    resolved: recorded.counts.resolved,
    remediated: remediatedIds.length,
    raced,
    findings: await currentFindings(context, target.name, remediatedIds),
  };
}

async function currentFindings(context: EngineContext, target: string, remediatedIds: readonly string[]): Promise<Finding[]> {
  return findingsOfRun(context.store.db, target, remediatedIds);
}

interface Removable {
  readonly finding: Finding;
  readonly access: ObservedAccess;
}

interface Recorded {
  readonly counts: { listed: number; standing: number; missing: number; opened: number; resolved: number };
  readonly covered: number;
  readonly removable: Removable[];
}

/** Compares the listing with the grants and brings the findings up to date, audited, in one transaction. */
async function recordComparison(
  unit: UnitOfWork,
  target: TargetConfig,
  entries: readonly ObservedAccess[],
  run: { id: string; startedAt: Date },
  options: ReconcileOptions,
): Promise<Recorded> {
  const named = entries.flatMap((e) => (e.grantId ? [e.grantId] : []));
  const grants = await grantsForReconciliation(unit.tx, target.name, run.startedAt, named);
  const comparison = compareAccess({
    target: target.name,
    observed: entries,
    grants,
    listedAt: run.startedAt,
    // Vault check-outs lend an existing account: nothing for the connector to list.
    entitlements: new Set(connectorEntitlements(target).map((e) => e.name)),
  });

  const observed = new Map<string, { finding: ObservedFinding; access?: ObservedAccess; removable: boolean }>();
  for (const standing of comparison.standing) {
    const finding = standingFinding(target.name, standing);
    observed.set(findingKey(finding), { finding, access: standing.access, removable: standing.keep === null });
  }
  for (const missing of comparison.missing) {
    const finding = missingFinding(target.name, missing);
    if (!observed.has(findingKey(finding))) observed.set(findingKey(finding), { finding, removable: false });
  }

  const open = await openFindingsForUpdate(unit.tx, target.name);
  const openByKey = new Map(open.map((f) => [findingKey(f), f]));
  const removable: Removable[] = [];
  const refreshed: { id: string; detail: Record<string, unknown> }[] = [];
  let opened = 0;
  let resolved = 0;
  for (const [key, { finding, access, removable: canRemove }] of observed) {
    let current = openByKey.get(key);
    if (current) {
      refreshed.push({ id: current.id, detail: finding.detail });
    } else {
      const inserted = await insertFinding(unit.tx, finding, unit.now);
      if (!inserted) continue; // another run opened it meanwhile; that run reports it
      current = inserted;
      opened++;
      await unit.audit({
        action: 'finding.opened',
        actor: options.actor,
        subject: inserted.id,
        data: {
          kind: finding.kind,
          target: target.name,
          entitlement: finding.entitlement,
          account: finding.account,
          principal: finding.principalId,
          grant: finding.grantId,
          ...finding.detail,
          run: run.id,
          severity: SEVERITY[finding.kind],
        },
      });
    }
    if (access && canRemove) removable.push({ finding: current, access });
  }
  await refreshFindings(unit.tx, refreshed, unit.now);
  for (const finding of open) {
    if (observed.has(findingKey(finding))) continue;
    if (!(await closeFinding(unit.tx, finding.id, 'resolved', unit.now, { resolvedBy: 'no longer observed' }))) continue;
    resolved++;
    await unit.audit({
      action: 'finding.resolved',
      actor: options.actor,
      subject: finding.id,
      data: {
        kind: finding.kind,
        target: target.name,
        entitlement: finding.entitlement,
        account: finding.account,
        reason: 'no longer observed',
        run: run.id,
        severity: 'info',
      },
    });
  }
  return {
    counts: { listed: entries.length, standing: comparison.standing.length, missing: comparison.missing.length, opened, resolved },
    covered: comparison.covered,
    removable,
  };
}

/**
 * Removes one piece of standing access. Re-checked right before the call: a grant provisioned
 * since the listing covers it and it stays. Returns whether it was removed.
 */
async function removeStanding(
  context: EngineContext,
  target: TargetConfig,
  connector: Connector,
  candidate: Removable,
  actor: string,
): Promise<{ removed: boolean; raced: boolean }> {
  const { finding, access } = candidate;
  const known = await transact(context, async (unit) => {
    const grants = await grantsForReconciliation(unit.tx, target.name, unit.now, access.grantId ? [access.grantId] : []);
    const cover = coveringGrant(access, grants, unit.now);
    if (!cover) return new Set(grants.map((g) => g.id));
    if (await closeFinding(unit.tx, finding.id, 'resolved', unit.now, { resolvedBy: `covered by ${cover.id}` })) {
      await unit.audit({
        action: 'finding.resolved',
        actor,
        subject: finding.id,
        data: {
          kind: finding.kind,
          target: target.name,
          entitlement: finding.entitlement,
          account: finding.account,
          reason: 'a grant now covers it',
          coveredBy: cover.id,
          severity: 'info',
        },
      });
    }
    return null;
  });
  if (known === null) return { removed: false, raced: false };

  let error: string | null = null;
  try {
    await callConnector(context, `removal of ${access.account} from ${target.name}/${access.entitlement}`, (signal) =>
      connector.removeAccess(target, access, signal),
    );
  } catch (caught) {
    error = errorMessage(caught);
  }

  return transact(context, async (unit) => {
    if (error !== null) {
      await annotateFinding(unit.tx, finding.id, { remediationError: error, remediationFailedAt: unit.now.toISOString() });
      await unit.audit({
        action: 'finding.remediation_failed',
        actor,
        subject: finding.id,
        data: { target: target.name, entitlement: access.entitlement, account: access.account, error, severity: 'high' },
      });
      return { removed: false, raced: false };
    }
    const closed = await closeFinding(unit.tx, finding.id, 'remediated', unit.now, { remediatedBy: actor });
    if (closed) {
      await unit.audit({
        action: 'finding.remediated',
        actor,
        subject: finding.id,
        data: { target: target.name, entitlement: access.entitlement, account: access.account, principal: access.principalId, severity: 'medium' },
      });
    }
    // NB. A grant that appeared between the re-check and the removal may just have lost its
    // access. It is not put back behind the target owner's back: it is reported loudly, and the
    // target is reconciled again at once so its missing access shows as a finding.
    const fresh = (await grantsForReconciliation(unit.tx, target.name, unit.now, [])).filter((g) => !known.has(g.id));
    const raced = coveringGrant({ ...access, grantId: null }, fresh, unit.now);
    if (raced) {
      await unit.audit({
        action: 'finding.remediation_raced',
        actor,
        subject: finding.id,
        data: { target: target.name, entitlement: access.entitlement, account: access.account, grant: raced.id, severity: 'high' },
      });
      await ensureJob(unit.tx, 'reconcile', target.name, 0);
      unit.wake();
    }
    return { removed: closed, raced: raced !== null };
  });
}

/**
 * Removes the standing access one open finding records, through the target's connector (an access
 * review's "remove", docs/reviews.md). Same path as remediation: re-checked against grants right
 * before the call, audited. Says whether it is gone and, if not, why.
 */
export async function removeFindingAccess(context: EngineContext, findingId: string, actor: string): Promise<{ removed: boolean; error: string | null }> {
  const finding = await getFinding(context.store.db, findingId);
  if (!finding || finding.kind !== 'standing') return { removed: false, error: `finding ${findingId} is not standing access` };
  // Closed already: remediated, or no longer observed (gone at the target); either way nothing to remove.
  if (finding.status !== 'open') return { removed: finding.status === 'remediated', error: null };
  const { target, connector } = resolveTarget(context, finding.target);
  const access: ObservedAccess = {
    account: finding.account,
    principalId: finding.principalId,
    entitlement: finding.entitlement,
    grantId: null,
    accessKey: derivedAccessKey(connector, target, {
      account: finding.account,
      principalId: finding.principalId,
      entitlement: finding.entitlement,
      grantId: null,
    }),
  };
  const outcome = await removeStanding(context, target, connector, { finding, access }, actor);
  if (outcome.removed) return { removed: true, error: null };
  const after = await getFinding(context.store.db, findingId);
  if (after?.status === 'resolved') return { removed: false, error: null };
  return { removed: false, error: String(after?.detail.remediationError ?? 'the access was not removed') };
}

/** The scheduler's handler: one target's periodic run, then the next one booked. */
export async function reconcileJob(context: EngineContext, job: Job, worker: number): Promise<void> {
  const settings = context.config().reconcile.targets.get(job.subjectId);
  if (!settings?.enabled || !context.config().targets.has(job.subjectId)) {
    // The target left the config or was switched off; a reload that brings it back books it again.
    await transact(context, (unit) => completeJob(unit.tx, job, worker));
    return;
  }
  const report = await reconcileTarget(context, job.subjectId, { trigger: 'schedule', actor: 'system' });
  const intervalMs = context.config().reconcile.targets.get(job.subjectId)?.intervalMs ?? settings.intervalMs;
  await transact(context, (unit) => rescheduleJob(unit.tx, job, worker, report.raced > 0 ? Math.min(intervalMs, RERUN_AFTER_RACE_MS) : intervalMs));
}

/** Books the periodic run of every target that has reconciliation on (at start and after a reload). */
export async function scheduleReconciliation(context: EngineContext): Promise<void> {
  const config = context.config();
  await transact(context, async (unit) => {
    for (const [name, settings] of config.reconcile.targets) {
      if (settings.enabled && config.targets.has(name)) await ensureJob(unit.tx, 'reconcile', name, settings.intervalMs);
    }
  });
}

export interface ManualReconcile {
  /** Who asked (audited); default `system`. */
  readonly actor?: string;
  /** Overrides each target's `reconcile.remediate` for this run. */
  readonly remediate?: boolean;
}

/** Reconciles one target, or every configured target one after the other, now. */
export async function reconcileNow(context: EngineContext, targetName: string | undefined, options: ManualReconcile = {}): Promise<ReconcileReport[]> {
  const names = targetName === undefined ? [...context.config().targets.keys()].sort() : [targetName];
  if (targetName !== undefined) resolveTarget(context, targetName);
  const reports: ReconcileReport[] = [];
  for (const name of names) {
    reports.push(
      await reconcileTarget(context, name, {
        trigger: 'manual',
        actor: options.actor ?? 'system',
        ...(options.remediate !== undefined ? { remediate: options.remediate } : {}),
      }),
    );
  }
  return reports;
}
