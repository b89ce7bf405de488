import { z } from 'zod';
import { alertActionInput } from '../domain/anomalies.js';
import { mayManageAlerts } from '../domain/authorization.js';
import { LapseError } from '../domain/errors.js';
import { anyId as id } from '../domain/input-schemas.js';
import { getAlert, listAlerts, updateAlertStatus, type Alert, type AlertFilter } from '../store/index.js';
import { transact, type EngineContext } from './context.js';
import { parseInput, principalInput } from './inputs.js';

/**
 * Alerts as people handle them (docs/monitoring.md#alerts): read by admins and auditors, moved to
 * acknowledged ("someone is on it") or resolved by admins, each step audited.
 */

export const alertChangeInput = z.object({ alertId: id, by: principalInput }).extend(alertActionInput.shape).strict();
export type AlertChangeInput = z.input<typeof alertChangeInput>;

export function readAlerts(context: EngineContext, filter: AlertFilter): Promise<Alert[]> {
  return listAlerts(context.store.db, filter);
}

/** Acknowledges or resolves an alert. A resolved alert is final; acknowledging twice is refused. */
export async function changeAlert(context: EngineContext, raw: AlertChangeInput): Promise<Alert> {
  const input = parseInput(alertChangeInput, raw, 'alert');
  if (!mayManageAlerts(context.config().roles, input.by)) {
    throw new LapseError('forbidden', `${input.by.id} may not act on alerts`, {
      where: input.alertId,
      hint: 'Admins (roles.admins) acknowledge and resolve alerts.',
    });
  }
  return transact(context, async (unit) => {
    const alert = await getAlert(unit.tx, input.alertId, { forUpdate: true });
    if (!alert) throw new LapseError('not_found', `there is no alert ${input.alertId}`, { where: input.alertId });
    const next = input.action === 'acknowledge' ? 'acknowledged' : 'resolved';
    if (alert.status === 'resolved' || alert.status === next) {
      throw new LapseError('invalid_transition', `alert ${alert.id} is already ${alert.status}`, {
        where: alert.id,
        hint: alert.status === 'resolved' ? 'A resolved alert is final; a new occurrence opens a new alert.' : 'Resolve it when it is handled.',
      });
    }
    const changed = await updateAlertStatus(unit.tx, alert.id, { status: next, by: input.by.id, at: unit.now, note: input.note ?? null });
    await unit.audit({
      action: `alert.${next}`,
      actor: input.by.id,
      subject: alert.id,
      data: { kind: alert.kind, ...(input.note ? { note: input.note } : {}) },
    });
    return changed;
  });
}
