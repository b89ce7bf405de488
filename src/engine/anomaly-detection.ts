import { burstCounter, detect, overdueRevocation, type DetectedEvent, type RaisedAlert } from '../domain/anomalies.js';
import { newId } from '../domain/ids.js';
import {
  bumpAlertCounter,
  ensureJob,
  fetchAuditEventRows,
  listOverdueRevocations,
  lockAlertCursor,
  moveAlertCursor,
  raiseAlert,
  rescheduleJob,
  type Job,
} from '../store/index.js';
import { transact, type EngineContext, type UnitOfWork } from './context.js';

/**
 * The anomaly detectors' worker (docs/monitoring.md#alerts). It reads the audit chain from a
 * durable cursor, so it sees every event whoever wrote it (requests, sign-ins, reloads), once:
 * the cursor moves in the transaction that stores the alerts, and the `alert.raised` events it
 * audits go through the notification outbox in that same transaction. One replica at a time
 * holds the cursor (row lock); a crash mid-batch leaves the cursor where it was.
 */

/** Audit events read per transaction. */
const BATCH = 500;
/** The one detect job's subject. */
const SUBJECT = 'audit';
/** A payload larger than this is cut (its event is then skipped): data fields are bounded well below it. */
const MAX_PAYLOAD_BYTES = 256 * 1024;

/** Batches one job run reads before it books itself again: a long backlog must not hold up a scheduler round. */
const BATCHES_PER_RUN = 4;

/**
 * Reads the events written since the last run (at most `maxBatches` batches) and raises what the
 * detectors find; returns how many alerts were new and whether events are left.
 */
export async function detectAnomalies(context: EngineContext, maxBatches = Number.POSITIVE_INFINITY): Promise<{ raised: number; more: boolean }> {
  let total = 0;
  for (let batch = 0; ; batch++) {
    const { raised, more } = await transact(context, (unit) => detectBatch(context, unit));
    total += raised;
    if (!more || batch + 1 >= maxBatches) return { raised: total, more };
  }
}

async function detectBatch(context: EngineContext, unit: UnitOfWork): Promise<{ raised: number; more: boolean }> {
  const settings = context.config().alerts;
  const cursor = await lockAlertCursor(unit.tx);
  const rows = await fetchAuditEventRows(unit.tx, cursor, BATCH, MAX_PAYLOAD_BYTES);
  const found: RaisedAlert[] = [];
  for (const row of rows) {
    const event = parseEvent(row.seq, row.payload);
    // The detectors' own events (and anything unreadable) are not evidence of anything.
    if (!event || event.action.startsWith('alert.')) continue;
    const counter = burstCounter(event);
    const burst = counter ? await bumpAlertCounter(unit.tx, counter.key, event.atMs, settings.burstWindowMs) : undefined;
    const alert = detect(event, settings, burst);
    if (alert) found.push(alert);
  }
  const more = rows.length === BATCH;
  if (!more) {
    for (const grant of await listOverdueRevocations(unit.tx, unit.now, settings.revocationOverdueMs)) found.push(overdueRevocation(grant));
  }
  let raised = 0;
  for (const alert of found) {
    const stored = await raiseAlert(unit.tx, newId('alert'), alert, unit.now);
    if (!stored.created) continue;
    raised++;
    await unit.audit({
      action: 'alert.raised',
      actor: 'system',
      subject: stored.alert.id,
      data: {
        kind: alert.kind,
        severity: alert.severity,
        summary: alert.summary,
        principal: alert.principalId,
        about: alert.subject,
        ...(typeof alert.detail.entitlement === 'string' ? { entitlement: alert.detail.entitlement } : {}),
      },
    });
  }
  if (rows.length > 0) await moveAlertCursor(unit.tx, rows.at(-1)!.seq);
  return { raised, more };
}

function parseEvent(seq: number, payload: string): (DetectedEvent & { atMs: number }) | undefined {
  try {
    const event = JSON.parse(payload) as { action?: unknown; actor?: unknown; subject?: unknown; data?: unknown; at?: unknown };
    if (typeof event.action !== 'string' || typeof event.actor !== 'string') return undefined;
    const atMs = typeof event.at === 'string' ? Date.parse(event.at) : NaN;
    return {
      seq,
      action: event.action,
      actor: event.actor,
      subject: typeof event.subject === 'string' ? event.subject : null,
      data: typeof event.data === 'object' && event.data !== null ? (event.data as Record<string, unknown>) : {},
      atMs: Number.isFinite(atMs) ? atMs : 0,
    };
  } catch {
    return undefined;
  }
}

/** The scheduler's handler: one run, then the next one booked `alerts.interval` later. */
export async function detectJob(context: EngineContext, job: Job, worker: number): Promise<void> {
  const { more } = context.config().alerts.enabled ? await detectAnomalies(context, BATCHES_PER_RUN) : { more: false };
  // A backlog is worked off in short runs, each its own job round.
  await transact(context, (unit) => rescheduleJob(unit.tx, job, worker, more ? 50 : context.config().alerts.intervalMs));
}

/** Books the detector's periodic run (at start and after a reload), when alerts are on. */
export async function scheduleDetection(context: EngineContext): Promise<void> {
  const alerts = context.config().alerts;
  if (!alerts.enabled) return;
  await transact(context, (unit) => ensureJob(unit.tx, 'detect', SUBJECT, alerts.intervalMs));
}
