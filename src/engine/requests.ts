import { evaluatePolicy } from '../domain/policy/index.js';
import { isLapseError, LapseError } from '../domain/errors.js';
import { newId } from '../domain/ids.js';
import { formatDuration } from '../domain/duration.js';
import { applyReview, type Review } from '../domain/review.js';
import { viaData } from '../domain/principal.js';
import { cancelRequest, decideRequest, timeOutRequest, type AccessRequest } from '../domain/request.js';
import { extendGrant as extendGrantState } from '../domain/grant.js';
import {
  cancelJob,
  getGrant,
  getRequest,
  insertRequest,
  insertReview,
  isUserDisabled,
  listReviews,
  scheduleJob,
  updateGrant,
  updateRequest,
} from '../store/index.js';
import { openGrant, rejectIfInputProblem } from './grant-opening.js';
import { auditRefusal, checkParameters, resolveEntitlement, transact, type EngineContext, type UnitOfWork } from './context.js';
import { factsAuditData, gatherFacts, requestLabels } from './policy-inputs.js';
import { assessRequestRisk } from './risk.js';
import { riskAuditData } from '../domain/risk.js';
import { candidatePolicies } from '../domain/policy/index.js';
import type { EffectiveConfig } from '../config/types.js';
import { refuseUnavailableCheckout } from './vault-checkout.js';
import { cancelInput, parseInput, reviewInput, submitInput, type CancelInput, type ReviewInput, type SubmitInput } from './inputs.js';

export interface SubmitResult {
  readonly request: AccessRequest;
}

/** A principal asks for an entitlement: the policy decides, and the decision is recorded. */
export async function submitRequest(context: EngineContext, raw: SubmitInput): Promise<SubmitResult> {
  const input = parseInput(submitInput, raw, 'request');
  const resolved = resolveEntitlement(context, input.target, input.entitlement);
  checkParameters(resolved, input.parameters);
  const config = context.config();
  // Outside the transaction: these may wait on other systems (bounded by their deadlines).
  const facts = await gatherFacts(context, config, input);
  const geo = await context.risk.geoFor(config);
  try {
    return await transact(context, async (unit) => {
      // NB. The duration risk judges is the one asked for, or the longest default a policy could give.
      const assessed = await assessRequestRisk(context, unit, { ...input, durationMs: input.durationMs ?? defaultDurationFor(config, input) }, { geo });
      const decision = evaluatePolicy(config.policies, {
        principal: input.principal,
        target: input.target,
        entitlement: input.entitlement,
        durationMs: input.durationMs,
        reason: input.reason,
        ticket: input.ticket,
        kind: 'access',
        client: input.client,
        now: unit.now,
        labels: requestLabels(config, input.target, input.entitlement),
        facts,
        risk: assessed.risk,
      });
      rejectIfInputProblem(decision, `${input.target}/${input.entitlement}`);
      await assessed.record(decision.outcome === 'denied');
      const checkout = resolved.entitlement.checkout;
      if (checkout && decision.outcome !== 'denied') await refuseUnavailableCheckout(unit, input.target, input.entitlement, checkout);
      let request = decideRequest(
        {
          id: newId('request'),
          kind: 'access',
          principal: input.principal,
          target: input.target,
          entitlement: input.entitlement,
          reason: input.reason,
          ticket: input.ticket ?? null,
          parameters: input.parameters,
          grantId: null,
        },
        decision,
        unit.now,
      );
      await insertRequest(unit.tx, request, { ...input.client, mfaAt: input.client.mfaAt?.toISOString() });
      await unit.audit({
        action: `request.${request.status}`,
        actor: request.principal.id,
        subject: request.id,
        data: {
          ...viaData(input.principal),
          entitlement: `${request.target}/${request.entitlement}`,
          durationMs: request.durationMs,
          policy: decision.policy,
          policyVersion: decision.policyVersion,
          reasons: decision.reasons,
          ...factsAuditData(facts),
          risk: riskAuditData(assessed.risk),
          ...(decision.denial ? { denial: decision.denial.code } : {}),
          ...(request.status === 'pending' ? { stages: request.stages.map((s) => s.name) } : {}),
        },
      });
      if (request.status === 'approved') request = await openGrant(context, unit, request);
      if (request.status === 'pending' && request.pendingUntil) {
        await scheduleJob(unit.tx, 'request_timeout', request.id, { at: request.pendingUntil });
      }
      return { request };
    });
  } catch (error) {
    const refused: readonly string[] = ['validation_failed', 'mfa_step_up_required', 'ticket_system_unavailable', 'conflict', 'invalid_transition'];
    if (error instanceof LapseError && refused.includes(error.code)) {
      await auditRefusal(context, {
        action: 'request.rejected',
        actor: input.principal.id,
        data: {
          ...viaData(input.principal),
          entitlement: `${input.target}/${input.entitlement}`,
          code: error.code,
          message: error.message,
          ...factsAuditData(facts),
        },
      });
    }
    throw error;
  }
}

/** An approver approves or denies; the pure review rules decide what that does. */
export async function reviewRequest(context: EngineContext, raw: ReviewInput): Promise<{ request: AccessRequest; effect: string }> {
  const input = parseInput(reviewInput, raw, 'review');
  try {
    return await transact(context, async (unit) => {
      const request = await requireRequest(unit, input.requestId);
      // NB. A deprovisioned person is no approver, whatever credential still reaches here (chat, email link).
      if (await isUserDisabled(unit.tx, input.reviewer.id)) {
        throw new LapseError('not_an_approver', `${input.reviewer.id} is disabled and can no longer review`, {
          where: request.id,
          hint: 'An admin re-enables people with `lapse admin user enable`.',
        });
      }
      const previous = await listReviews(unit.tx, request.id);
      requireFreshMfa(request, input.client.mfaAt, unit.now);
      const review: Review = {
        id: newId('review'),
        requestId: request.id,
        reviewer: input.reviewer,
        decision: input.decision,
        comment: input.comment,
        stage: request.currentStage,
        at: unit.now,
      };
      const outcome = applyReview(request, previous, review);
      await insertReview(unit.tx, review);
      let next = outcome.request;
      await updateRequest(unit.tx, next);
      await unit.audit({
        action: `review.${input.decision}`,
        actor: input.reviewer.id,
        subject: request.id,
        data: { ...viaData(input.reviewer), stage: request.stages[review.stage]?.name ?? null, effect: outcome.effect, comment: input.comment },
      });
      if (outcome.effect === 'approved' || outcome.effect === 'denied') {
        await cancelJob(unit.tx, 'request_timeout', request.id);
        await unit.audit({ action: `request.${outcome.effect}`, actor: input.reviewer.id, subject: request.id, data: { by: 'review' } });
      }
      if (outcome.effect === 'approved') next = await settleApproved(context, unit, next);
      return { request: next, effect: outcome.effect };
    });
  } catch (error) {
    if (isLapseError(error, 'self_approval') || isLapseError(error, 'not_an_approver')) {
      await auditRefusal(context, {
        action: 'review.refused',
        actor: input.reviewer.id,
        subject: input.requestId,
        data: { ...viaData(input.reviewer), code: error.code, message: error.message },
      });
    }
    throw error;
  }
}

/** A stage may ask its approvers for a recent second factor (`approval.stages[].mfa.maxAge`). */
function requireFreshMfa(request: AccessRequest, mfaAt: Date | undefined, now: Date): void {
  const maxAge = request.stages[request.currentStage]?.mfaMaxAgeMs;
  if (maxAge === undefined || request.status !== 'pending') return;
  const age = mfaAt ? now.getTime() - mfaAt.getTime() : Number.POSITIVE_INFINITY;
  if (age <= maxAge) return;
  throw new LapseError(
    'mfa_step_up_required',
    `approving at stage ${request.stages[request.currentStage]!.name} needs MFA within the last ${formatDuration(maxAge)}`,
    {
      where: request.id,
      hint: 'Complete MFA again (step-up), then repeat the review.',
    },
  );
}

/**
 * What an approval does: an access request opens a grant; an extension request moves the grant's
 * expiry (if the grant is still active: an extension approved after the grant ended changes nothing).
 */
export async function settleApproved(context: EngineContext, unit: UnitOfWork, request: AccessRequest): Promise<AccessRequest> {
  if (request.kind !== 'extension') return openGrant(context, unit, request);
  const grant = request.grantId ? await getGrant(unit.tx, request.grantId, { forUpdate: true }) : undefined;
  if (!grant || grant.status !== 'active' || grant.breakGlass) {
    // (An extension of a break-glass grant asked for before they were refused is never applied.)
    await unit.audit({
      action: 'grant.extension_lapsed',
      actor: 'system',
      subject: request.grantId ?? request.id,
      data: { request: request.id, ...(grant?.breakGlass ? { breakGlass: true } : {}) },
    });
    return request;
  }
  const extended = extendGrantState(grant, request.durationMs);
  await updateGrant(unit.tx, extended);
  await scheduleJob(unit.tx, 'expire', grant.id, { at: extended.expiresAt! });
  // The target's own expiry, if it keeps one, moves too (outside this transaction, retried).
  const connector = context.connectors.get(context.config().targets.get(grant.target)?.connector ?? '');
  if (connector?.extend) await scheduleJob(unit.tx, 'extend', grant.id, { delayMs: 0 });
  unit.wake();
  await unit.audit({
    action: 'grant.extended',
    actor: request.principal.id,
    subject: grant.id,
    data: { request: request.id, byMs: request.durationMs, expiresAt: extended.expiresAt!.toISOString() },
  });
  return request;
}

/** The requester withdraws a pending request. */
export async function cancelPendingRequest(context: EngineContext, raw: CancelInput): Promise<AccessRequest> {
  const input = parseInput(cancelInput, raw, 'cancel');
  return transact(context, async (unit) => {
    const request = await requireRequest(unit, input.requestId, input.by.id);
    const cancelled = cancelRequest(request, input.by.id, unit.now);
    await updateRequest(unit.tx, cancelled);
    await cancelJob(unit.tx, 'request_timeout', request.id);
    await unit.audit({ action: 'request.cancelled', actor: input.by.id, subject: request.id, data: viaData(input.by) });
    return cancelled;
  });
}

/** Job handler: a pending request nobody decided in time closes. */
export async function timeOutPendingRequest(context: EngineContext, requestId: string): Promise<void> {
  await transact(context, async (unit) => {
    const request = await getRequest(unit.tx, requestId, { forUpdate: true });
    if (!request || request.status !== 'pending') return;
    const closed = timeOutRequest(request, unit.now);
    await updateRequest(unit.tx, closed);
    await unit.audit({ action: 'request.timed_out', actor: 'system', subject: request.id });
  });
}

/**
 * Loads a request for change. With `visibleTo`, only the requester may see it: to anyone else a
 * request they may not act on does not exist.
 */
async function requireRequest(unit: UnitOfWork, id: string, visibleTo?: string): Promise<AccessRequest> {
  const request = await getRequest(unit.tx, id, { forUpdate: true });
  if (!request || (visibleTo !== undefined && request.principal.id !== visibleTo)) {
    throw new LapseError('not_found', `there is no request ${id}`, { where: id });
  }
  return request;
}

/** The default duration of the first policy that could govern (what the decision will use when none was asked for). */
function defaultDurationFor(config: EffectiveConfig, input: { principal: AccessRequest['principal']; target: string; entitlement: string }): number {
  return candidatePolicies(config.policies, input.target, input.entitlement, input.principal)[0]?.definition.duration.defaultMs ?? 3_600_000;
}
