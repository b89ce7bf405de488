import { beginRevoke } from '../domain/grant.js';
import { newId } from '../domain/ids.js';
import {
  accessKeysOf,
  completeJob,
  finishConnectorAttempts,
  getGrant,
  liveGrantsForKey,
  lockAccessKeys,
  retryJob,
  scheduleJob,
  startConnectorAttempts,
  updateGrant,
  type Job,
  type StoredGrant,
} from '../store/index.js';
import { resolveEntitlement, transact, type EngineContext, type ResolvedEntitlement, type UnitOfWork } from './context.js';
import { failpoint } from './failpoints.js';
import { activateProvisioned } from './grant-opening.js';
import { holdCredentials } from './held-credentials.js';
import { handOutCheckout } from './vault-checkout.js';
import { backoffMs, callConnector, errorMessage, specFor } from './target-calls.js';

/**
 * The scheduler's job handlers for a grant's life at the target. Each follows one shape:
 * (1) a transaction that checks the state and records the attempt, (2) the connector call outside
 * any transaction, with a deadline, (3) a transaction that records the outcome. A crash between
 * the steps leaves the job claimed by a dead worker; another worker takes it over and repeats the
 * (idempotent) call.
 */

async function recordProvisionAttempt(unit: UnitOfWork, grant: StoredGrant, worker: number): Promise<string> {
  const id = newId('attempt');
  await startConnectorAttempts(unit.tx, [{ id, grantId: grant.id, operation: 'provision', worker, startedAt: unit.now }]);
  await updateGrant(unit.tx, grant, { provisionAttempt: true });
  return id;
}

async function finishAttempt(unit: UnitOfWork, attemptId: string, error: string | null): Promise<void> {
  await finishConnectorAttempts(unit.tx, unit.now, [{ id: attemptId, error }]);
}

/** How long a provision waits for an in-flight revoke of the same access before looking again. */
const WAIT_FOR_REVOKE_MS = 200;

export async function provisionJob(context: EngineContext, job: Job, worker: number): Promise<void> {
  const prepared = await transact(context, async (unit) => {
    // The access key's lock first, then the grant's row: one order for every job (lockAccessKeys).
    await lockAccessKeys(unit.tx, [...(await accessKeysOf(unit.tx, [job.subjectId])).values()]);
    const grant = await getGrant(unit.tx, job.subjectId, { forUpdate: true });
    if (!grant || grant.status !== 'provisioning') {
      await completeJob(unit.tx, job, worker);
      return null;
    }
    // NB. A revoke of the same access still running at the target could remove what we are about
    // to create; wait for it to finish first.
    const others = await liveGrantsForKey(unit.tx, grant.accessKey, grant.id);
    if (others.some((other) => other.status === 'revoking' && other.coveredBy === null)) {
      await retryJob(unit.tx, job, worker, WAIT_FOR_REVOKE_MS, 'waiting for a revoke of the same access to finish');
      return null;
    }
    const resolved = resolveEntitlement(context, grant.target, grant.entitlement);
    // A vault check-out calls no target: it hands out the password Lapse holds, in this transaction.
    if (resolved.entitlement.checkout) {
      await handOutCheckout(context, unit, job, worker, grant, resolved.entitlement.checkout);
      return null;
    }
    const attemptId = await recordProvisionAttempt(unit, grant, worker);
    return { grant, resolved, attemptId, spec: specFor(grant, resolved, unit.now) };
  });
  if (!prepared) return;
  const { grant, resolved, attemptId, spec } = prepared;

  failpoint('provision:before-call');
  let error: string | null = null;
  let handle: Record<string, unknown> | null = null;
  let credentials: Readonly<Record<string, string>> | undefined;
  try {
    const result = await callConnector(context, `provision of ${grant.id}`, (signal) => resolved.connector.provision(spec, signal));
    handle = { ...result.handle };
    credentials = result.credentials;
  } catch (caught) {
    error = errorMessage(caught);
  }
  failpoint('provision:after-call');

  await transact(context, async (unit) => {
    await finishAttempt(unit, attemptId, error);
    const current = await getGrant(unit.tx, grant.id, { forUpdate: true });
    if (!current) return;
    if (error === null) {
      if (current.status !== 'provisioning') {
        // Ended while we provisioned: keep the handle so the pending revoke removes what we made.
        await updateGrant(unit.tx, current, { handle });
        await completeJob(unit.tx, job, worker);
        return;
      }
      await activateProvisioned(context, unit, job, worker, current, handle, credentials);
      // The target's own expiry was set with slack before the clock started; now it can be exact.
      if (resolved.connector.settleExpiry) await scheduleJob(unit.tx, 'extend', grant.id, { delayMs: 0 });
      return;
    }
    if (current.status !== 'provisioning') {
      await completeJob(unit.tx, job, worker);
      return;
    }
    const { provisionAttempts, provisionBackoffMinMs, provisionBackoffMaxMs } = context.config().scheduler;
    const attempts = current.provisionAttempts;
    if (attempts >= provisionAttempts) {
      // Given up. The provision may have half-happened, so the same idempotent revoke cleans up.
      const ending = beginRevoke(current, 'provision_failed', 'system', unit.now);
      await updateGrant(unit.tx, ending, { lastError: error });
      await completeJob(unit.tx, job, worker);
      await scheduleJob(unit.tx, 'revoke', grant.id, { delayMs: 0 });
      unit.wake();
      await unit.audit({ action: 'grant.provision_failed', actor: 'system', subject: grant.id, data: { attempts, error, final: true, severity: 'high' } });
      return;
    }
    const delay = backoffMs(attempts, provisionBackoffMinMs, provisionBackoffMaxMs);
    await updateGrant(unit.tx, current, { lastError: error });
    await retryJob(unit.tx, job, worker, delay, error);
    await unit.audit({ action: 'grant.provision_failed', actor: 'system', subject: grant.id, data: { attempts, error, final: false, retryInMs: delay } });
  });
  failpoint('provision:after-commit');
}

/**
 * Tells the target to move its own expiry to the grant's end: once the grant is active (the
 * connector's settleExpiry; provision had to allow for the time until activation) and after each
 * extension (its extend). Same three steps as provisioning; retried with backoff while the grant
 * is active, since a target that keeps its old expiry would cut the holder off early or late
 * (audited either way).
 */
export async function extendJob(context: EngineContext, job: Job, worker: number): Promise<void> {
  const prepared = await transact(context, async (unit) => {
    const grant = await getGrant(unit.tx, job.subjectId, { forUpdate: true });
    const found = grant?.status === 'active' ? tryResolve(context, grant) : undefined;
    // A vault check-out has no target-side expiry: its password is rotated at check-in.
    const resolved = found?.entitlement.checkout ? undefined : found;
    // Not extended yet: this is the expiry settled at activation.
    const settling = grant?.extensions === 0;
    const call = settling ? resolved?.connector.settleExpiry?.bind(resolved.connector) : resolved?.connector.extend?.bind(resolved.connector);
    if (!grant || !resolved || !call) {
      await completeJob(unit.tx, job, worker);
      return null;
    }
    return { grant, call, settling, spec: specFor(grant, resolved, unit.now) };
  });
  if (!prepared) return;
  const { grant, call, settling, spec } = prepared;
  const actions = settling
    ? { done: 'grant.target_expiry_set', failed: 'grant.target_expiry_set_failed' }
    : { done: 'grant.target_extended', failed: 'grant.target_extend_failed' };
  let error: string | null = null;
  let credentials: Readonly<Record<string, string>> | undefined;
  try {
    const result = await callConnector(context, `${settling ? 'expiry' : 'extension'} of ${grant.id}`, (signal) => call(spec, grant.handle, signal));
    credentials = result?.credentials;
  } catch (caught) {
    error = errorMessage(caught);
  }
  await transact(context, async (unit) => {
    const current = await getGrant(unit.tx, grant.id, { forUpdate: true });
    if (error === null || !current || current.status !== 'active') {
      if (error === null && current?.status === 'active' && credentials) await holdCredentials(context, unit, current, credentials);
      await completeJob(unit.tx, job, worker);
      if (error === null)
        await unit.audit({
          action: actions.done,
          actor: 'system',
          subject: grant.id,
          data: { notAfter: spec.notAfter.toISOString(), fetchOnce: credentials !== undefined },
        });
      // NB. Extended again while we called: the calls for the two expiries may have landed in
      // either order at the target, so tell it the latest once more.
      if (error === null && current?.status === 'active' && current.expiresAt!.getTime() !== spec.notAfter.getTime()) {
        await scheduleJob(unit.tx, 'extend', grant.id, { delayMs: 0 });
        unit.wake();
      }
      return;
    }
    const { provisionBackoffMinMs, provisionBackoffMaxMs } = context.config().scheduler;
    const delay = backoffMs(job.attempts, provisionBackoffMinMs, provisionBackoffMaxMs);
    await retryJob(unit.tx, job, worker, delay, error);
    await unit.audit({ action: actions.failed, actor: 'system', subject: grant.id, data: { error, retryInMs: delay, severity: 'high' } });
  });
}

function tryResolve(context: EngineContext, grant: StoredGrant): ResolvedEntitlement | undefined {
  try {
    return resolveEntitlement(context, grant.target, grant.entitlement);
  } catch {
    return undefined;
  }
}
