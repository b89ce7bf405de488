import { completeJob, getGrant, getRequest, scheduleJob, type Job } from '../store/index.js';
import { transact, type EngineContext } from './context.js';
import { enqueueEvents } from './notification-outbox.js';

/**
 * Notifications that come from time passing rather than from a change: a grant about to end, and
 * a stage still undecided (a reminder to its approvers, an escalation to a second group). Each is
 * one job per grant or request, moved when the grant is extended or the next stage opens, and
 * checked against the current state when it fires.
 */
export async function notifyEndingSoon(context: EngineContext, job: Job, worker: number): Promise<void> {
  await transact(context, async (unit) => {
    const grant = await getGrant(unit.tx, job.subjectId);
    const endingSoonMs = context.config().notifications.endingSoonMs;
    if (grant?.status === 'active' && grant.expiresAt) {
      const due = grant.expiresAt.getTime() - endingSoonMs;
      if (due > unit.now.getTime() + 1_000) {
        // Extended since it was set: wait for the new end (scheduleJob releases our claim).
        await scheduleJob(unit.tx, 'notify_ending', grant.id, { at: new Date(due) });
        return;
      }
      if (grant.expiresAt > unit.now) await enqueueEvents(context, unit, [{ name: 'grant.ending_soon', subject: grant.id, actor: 'system', data: {} }]);
    }
    await completeJob(unit.tx, job, worker);
  });
}

/** A reminder to the approvers of a stage still open, or (escalation) a word to `approvals.escalateTo`. */
export async function notifyStillPending(context: EngineContext, job: Job, worker: number, name: 'request.reminder' | 'request.escalated'): Promise<void> {
  await transact(context, async (unit) => {
    const request = await getRequest(unit.tx, job.subjectId);
    if (request?.status === 'pending') await enqueueEvents(context, unit, [{ name, subject: request.id, actor: 'system', data: {} }]);
    await completeJob(unit.tx, job, worker);
  });
}
