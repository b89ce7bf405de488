import type { GrantSpec, RevokeResult } from '../connectors/index.js';
import { beginRevoke, completeRevoke, type Grant } from '../domain/grant.js';
import { newId } from '../domain/ids.js';
import {
  accessKeysOf,
  completeJobs,
  convertJobs,
  finishConnectorAttempts,
  getGrantsForUpdate,
  liveGrantsForKeys,
  lockAccessKeys,
  retryJob,
  scheduleJob,
  setGrantLastError,
  setGrantPropagationPending,
  startConnectorAttempts,
  updateGrantStates,
  type Job,
  type StoredGrant,
} from '../store/index.js';
import { resolveEntitlement, transact, type EngineContext, type ResolvedEntitlement, type UnitOfWork } from './context.js';
import { failpoint } from './failpoints.js';
import { backoffMs, callConnector, errorMessage, specFor } from './target-calls.js';
import { checkIn } from './vault-checkout.js';
import { isVaultAccessKey } from './vault-rotation.js';

/**
 * Expiry and revocation, in batches. When thousands of grants expire in the same second, each
 * batch costs two transactions and a handful of set-based statements however many grants it holds,
 * while the target calls run in parallel between them. The shape is the same as for one grant:
 * (1) a transaction starts the revokes and records the attempts, (2) the connector calls, outside
 * any transaction, (3) a transaction records the outcomes. A crash anywhere leaves claimed revoke
 * jobs that another worker repeats (revoke is idempotent).
 */

interface RevokeCall {
  readonly grant: StoredGrant;
  readonly job: Job;
  readonly attemptId: string;
  readonly resolved: ResolvedEntitlement;
  readonly spec: GrantSpec;
}

/** Target calls in flight at once per batch. */
const CALL_CONCURRENCY = 32;

export async function revokeJobs(context: EngineContext, jobs: readonly Job[], worker: number): Promise<void> {
  const calls = await transact(context, (unit) => startRevokes(context, unit, jobs, worker));
  if (jobs.some((job) => job.kind === 'expire')) failpoint('expire:after-commit');
  if (calls.length === 0) return;

  failpoint('revoke:before-call');
  const errors = new Map<string, string>();
  const pending = new Map<string, Required<RevokeResult>>();
  const { revokeBackoffMinMs, revokeBackoffMaxMs } = context.config().scheduler;
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(CALL_CONCURRENCY, calls.length) }, async () => {
      while (next < calls.length) {
        const call = calls[next++]!;
        try {
          // A vault check-in sets its own deadlines per target call (its rotation is a job of its own).
          const result = isVaultAccessKey(call.grant.accessKey)
            ? await checkIn(context, call.grant)
            : await callConnector(context, `revoke of ${call.grant.id}`, (signal) => call.resolved.connector.revoke(call.spec, call.grant.handle, signal));
          if (result?.propagationPending) {
            const recheckInMs = Math.min(revokeBackoffMaxMs, Math.max(revokeBackoffMinMs, result.recheckInMs ?? revokeBackoffMinMs));
            pending.set(call.grant.id, { propagationPending: result.propagationPending, recheckInMs });
          }
        } catch (caught) {
          errors.set(call.grant.id, errorMessage(caught));
        }
      }
    }),
  );
  failpoint('revoke:after-call');

  await transact(context, (unit) => recordOutcomes(context, unit, calls, errors, pending, worker));
  failpoint('revoke:after-commit');
}

async function startRevokes(context: EngineContext, unit: UnitOfWork, jobs: readonly Job[], worker: number): Promise<RevokeCall[]> {
  // The access keys' locks first (sorted), then the grants' rows: the order every job follows.
  const ids = jobs.map((job) => job.subjectId);
  await lockAccessKeys(unit.tx, [...(await accessKeysOf(unit.tx, ids)).values()]);
  const grants = await getGrantsForUpdate(unit.tx, ids);
  const finished: Job[] = [];
  const expired: Job[] = [];
  const ending: { grant: StoredGrant; job: Job }[] = [];
  const started: Grant[] = [];
  for (const job of jobs) {
    const grant = grants.get(job.subjectId);
    if (job.kind === 'expire') {
      if (!grant || grant.status !== 'active' || grant.expiresAt === null) {
        finished.push(job);
      } else if (grant.expiresAt.getTime() > unit.now.getTime()) {
        await scheduleJob(unit.tx, 'expire', grant.id, { at: grant.expiresAt }); // extended meanwhile
      } else {
        const revoking = { ...grant, ...beginRevoke(grant, 'expired', 'system', unit.now) };
        started.push(revoking);
        expired.push(job);
        ending.push({ grant: revoking, job: { ...job, kind: 'revoke' } });
        await unit.audit({ action: 'grant.expired', actor: 'system', subject: grant.id, data: { expiresAt: grant.expiresAt.toISOString() } });
      }
    } else if (!grant || grant.status !== 'revoking') {
      finished.push(job);
    } else {
      ending.push({ grant, job });
    }
  }

  // Reference counting: another live grant of the same access keeps it, so only the last grant
  // of an access to end removes it at the target. Grants ending in this batch cover nothing.
  const endingIds = new Set(ending.map((e) => e.grant.id));
  const live = await liveGrantsForKeys(
    unit.tx,
    ending.map((e) => e.grant.accessKey),
  );
  const covered: Grant[] = [];
  const coveredBy = new Map<string, string>();
  const calls: RevokeCall[] = [];
  for (const { grant, job } of ending) {
    // NB. A vault password is covered only by a holder who has it already: a check-out still
    // waiting gets the password after this one's rotation, never the one this holder saw.
    const covers = (o: StoredGrant) => o.status === 'active' || (o.status === 'provisioning' && !isVaultAccessKey(grant.accessKey));
    const cover = live.find((o) => o.accessKey === grant.accessKey && !endingIds.has(o.id) && covers(o));
    if (cover) {
      covered.push(completeRevoke(grant, unit.now));
      coveredBy.set(grant.id, cover.id);
      finished.push(job);
      await unit.audit({
        action: 'grant.revoked',
        actor: 'system',
        subject: grant.id,
        data: { reason: grant.endReason, expiresAt: grant.expiresAt?.toISOString() ?? null, coveredBy: cover.id, targetCall: false },
      });
      continue;
    }
    let resolved: ResolvedEntitlement;
    try {
      resolved = resolveEntitlement(context, grant.target, grant.entitlement);
    } catch (error) {
      // The target left the config: keep retrying (and alerting) until it is back or force-closed.
      const delay = backoffMs(grant.revokeAttempts + 1, context.config().scheduler.revokeBackoffMinMs, context.config().scheduler.revokeBackoffMaxMs);
      await retryJob(unit.tx, job, worker, delay, errorMessage(error));
      await unit.audit({
        action: 'grant.revoke_failed',
        actor: 'system',
        subject: grant.id,
        data: { error: errorMessage(error), retryInMs: delay, severity: 'high' },
      });
      continue;
    }
    calls.push({ grant, job, attemptId: newId('attempt'), resolved, spec: specFor(grant, resolved, unit.now) });
  }

  await updateGrantStates(unit.tx, started);
  await updateGrantStates(unit.tx, covered, { coveredBy });
  await updateGrantStates(
    unit.tx,
    calls.map((c) => c.grant),
    { revokeAttempt: true },
  );
  await startConnectorAttempts(
    unit.tx,
    calls.map((c) => ({ id: c.attemptId, grantId: c.grant.id, operation: 'revoke' as const, worker, startedAt: unit.now })),
  );
  await convertJobs(unit.tx, expired, 'revoke');
  await completeJobs(unit.tx, finished, worker);
  return calls;
}

async function recordOutcomes(
  context: EngineContext,
  unit: UnitOfWork,
  calls: readonly RevokeCall[],
  errors: ReadonlyMap<string, string>,
  pending: ReadonlyMap<string, Required<RevokeResult>>,
  worker: number,
): Promise<void> {
  await finishConnectorAttempts(
    unit.tx,
    unit.now,
    calls.map((c) => ({ id: c.attemptId, error: errors.get(c.grant.id) ?? null })),
  );
  const current = await getGrantsForUpdate(
    unit.tx,
    calls.map((c) => c.grant.id),
  );
  const done: Grant[] = [];
  const finished: Job[] = [];
  const { revokeBackoffMinMs, revokeBackoffMaxMs } = context.config().scheduler;
  for (const call of calls) {
    const grant = current.get(call.grant.id);
    if (!grant || grant.status !== 'revoking') {
      finished.push(call.job); // force-closed meanwhile
      continue;
    }
    const error = errors.get(grant.id);
    const unconfirmed = pending.get(grant.id);
    if (error === undefined && unconfirmed) {
      // Accepted but not yet read back: still live (and overdue past its end) until a recheck confirms it.
      await setGrantPropagationPending(unit.tx, grant.id, unconfirmed.propagationPending);
      await retryJob(unit.tx, call.job, worker, unconfirmed.recheckInMs, `propagation pending: ${unconfirmed.propagationPending}`);
      if (grant.propagationPending === null) {
        await unit.audit({
          action: 'grant.revoke_pending',
          actor: 'system',
          subject: grant.id,
          data: { reason: unconfirmed.propagationPending, recheckInMs: unconfirmed.recheckInMs },
        });
        context.logger.info({ grant: grant.id, reason: unconfirmed.propagationPending }, 'revoke accepted; propagation pending');
      }
      continue;
    }
    if (error === undefined) {
      const closed = completeRevoke(grant, unit.now);
      done.push(closed);
      finished.push(call.job);
      await unit.audit({
        action: `grant.${closed.status}`,
        actor: 'system',
        subject: grant.id,
        data: { reason: grant.endReason, expiresAt: grant.expiresAt?.toISOString() ?? null, targetCall: true },
      });
      continue;
    }
    // Never given up: retried with capped backoff until it works or an admin force-closes it.
    const delay = backoffMs(grant.revokeAttempts, revokeBackoffMinMs, revokeBackoffMaxMs);
    await setGrantLastError(unit.tx, grant.id, error);
    await retryJob(unit.tx, call.job, worker, delay, error);
    await unit.audit({
      action: 'grant.revoke_failed',
      actor: 'system',
      subject: grant.id,
      data: { attempt: grant.revokeAttempts, error, retryInMs: delay, severity: 'high' },
    });
    context.logger.warn({ grant: grant.id, attempt: grant.revokeAttempts, retryInMs: delay, error }, 'revoke failed; will retry');
  }
  await updateGrantStates(unit.tx, done, { clearError: true });
  await completeJobs(unit.tx, finished, worker);
}
