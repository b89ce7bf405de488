import { LapseError } from '../domain/errors.js';
import { activateGrant, type Grant } from '../domain/grant.js';
import { newId } from '../domain/ids.js';
import type { PolicyDecision } from '../domain/policy/types.js';
import type { AccessRequest } from '../domain/request.js';
import { completeJob, insertGrant, scheduleJob, updateGrant, updateRequest, type Job, type StoredGrant } from '../store/index.js';
import { resolveEntitlement, type EngineContext, type UnitOfWork } from './context.js';
import { holdCredentials } from './held-credentials.js';
import { vaultAccessKey } from './vault-rotation.js';

/**
 * Turns an approved access (or break-glass) request into a grant waiting to be provisioned, in the
 * caller's transaction. The provision job is due at once; the grant's clock starts only when the
 * target confirms (activation), never at approval.
 */
export async function openGrant(context: EngineContext, unit: UnitOfWork, request: AccessRequest): Promise<AccessRequest> {
  const { target, entitlement, connector } = resolveEntitlement(context, request.target, request.entitlement);
  const grant: Grant = {
    id: newId('grant'),
    requestId: request.id,
    principalId: request.principal.id,
    target: request.target,
    entitlement: request.entitlement,
    status: 'provisioning',
    durationMs: request.durationMs,
    breakGlass: request.kind === 'break_glass',
    parameters: request.parameters,
    activatedAt: null,
    expiresAt: null,
    endReason: null,
    endedBy: null,
    endedAt: null,
    extensions: 0,
  };
  // A vault check-out's grants share their account's key; the connector never sees them.
  const accessKey = entitlement.checkout
    ? vaultAccessKey(target.name, entitlement.checkout.account)
    : connector.accessKey({
        grantId: grant.id,
        principalId: grant.principalId,
        target,
        entitlement,
        durationMs: grant.durationMs,
        notAfter: new Date(unit.now.getTime() + grant.durationMs),
        parameters: grant.parameters,
      });
  await insertGrant(unit.tx, grant, accessKey, unit.now);
  const withGrant = { ...request, grantId: grant.id };
  await updateRequest(unit.tx, withGrant);
  await scheduleJob(unit.tx, 'provision', grant.id, { delayMs: 0 });
  unit.wake();
  return withGrant;
}

/** Denials that are the caller's input to fix (nothing stored) rather than a decision to record. */
const INPUT_DENIALS = new Set(['duration_too_long', 'justification_required', 'ticket_required', 'ticket_not_found', 'ticket_closed', 'ticket_not_assigned']);

/**
 * Throws for a decision the requester must correct before asking (bad duration, missing, closed or
 * unknown ticket, MFA step-up), or may retry (the ticket system could not be asked). Returns normally for decisions that are recorded: approved, pending, denied.
 */
export function rejectIfInputProblem(decision: PolicyDecision, where: string): void {
  const denial = decision.denial;
  if (decision.outcome !== 'denied' || !denial) return;
  if (denial.code === 'mfa_required') {
    throw new LapseError('mfa_step_up_required', denial.message, {
      where,
      hint: denial.hint ?? 'Complete MFA again, then repeat the request.',
      policy: decision.policy,
    });
  }
  if (denial.code === 'ticket_unverified') {
    throw new LapseError('ticket_system_unavailable', denial.message, {
      where,
      hint: denial.hint ?? 'Try again in a minute.',
      policy: decision.policy,
      denial: denial.code,
    });
  }
  if (INPUT_DENIALS.has(denial.code)) {
    throw new LapseError('validation_failed', denial.message, {
      where,
      hint: denial.hint ?? 'Correct the request; nothing was stored.',
      policy: decision.policy,
      denial: denial.code,
    });
  }
}

/**
 * The target confirmed the access (a provision, or a vault check-out): the grant's clock starts
 * now, its handle is kept, credentials are held for one fetch, its provision job is done and its
 * expiry scheduled, audited as `grant.activated`. In the caller's transaction.
 */
export async function activateProvisioned(
  context: EngineContext,
  unit: UnitOfWork,
  job: Job,
  worker: number,
  grant: StoredGrant,
  handle: Record<string, unknown> | null,
  credentials: Readonly<Record<string, string>> | undefined,
): Promise<Grant> {
  const active = activateGrant(grant, unit.now);
  await updateGrant(unit.tx, active, { handle, lastError: null });
  if (credentials) await holdCredentials(context, unit, active, credentials);
  await completeJob(unit.tx, job, worker);
  await scheduleJob(unit.tx, 'expire', grant.id, { at: active.expiresAt! });
  unit.wake();
  await unit.audit({
    action: 'grant.activated',
    actor: 'system',
    subject: grant.id,
    data: {
      request: grant.requestId,
      entitlement: `${grant.target}/${grant.entitlement}`,
      principal: grant.principalId,
      expiresAt: active.expiresAt!.toISOString(),
      breakGlass: grant.breakGlass,
      fetchOnce: credentials !== undefined,
    },
  });
  return active;
}
