import { assessRequestRisk } from './risk.js';
import { riskAuditData } from '../domain/risk.js';
import { LapseError } from '../domain/errors.js';
import { newId } from '../domain/ids.js';
import { inSubjectSet, sharePerson, viaData } from '../domain/principal.js';
import { decideRequest, type AccessRequest } from '../domain/request.js';
import { getBreakGlassReview, getRequest, insertRequest, markBreakGlassReviewed } from '../store/index.js';
import { openGrant } from './grant-opening.js';
import { breakGlassEntitlements } from './break-glass-scope.js';
import { auditRefusal, checkParameters, resolveEntitlement, transact, type EngineContext } from './context.js';
import { breakGlassInput, breakGlassReviewInput, parseInput, type BreakGlassInput, type BreakGlassReviewInput } from './inputs.js';
import { mayReviewBreakGlass } from '../domain/authorization.js';

/**
 * Break-glass: immediate access without approval, for emergencies. Allowed only to the configured
 * subjects and entitlements, with a real reason; loudly audited and flagged for review afterwards.
 */
export async function breakGlass(context: EngineContext, raw: BreakGlassInput): Promise<AccessRequest> {
  const input = parseInput(breakGlassInput, raw, 'break-glass');
  const config = context.config();
  const settings = config.breakGlass;
  const refuse = async (message: string, hint: string): Promise<never> => {
    await auditRefusal(context, {
      action: 'break_glass.refused',
      actor: input.principal.id,
      data: { ...viaData(input.principal), entitlement: `${input.target}/${input.entitlement}`, message },
    });
    throw new LapseError('forbidden', message, { where: `${input.target}/${input.entitlement}`, hint });
  };
  // NB. Refused before the entitlement is looked up, so whoever may not break glass learns nothing
  // about which targets exist. The hints speak to the requester, not to whoever edits the config.
  if (!settings.enabled)
    await refuse('break-glass is turned off on this server', 'Request access normally; an admin can tell you how emergencies are handled here.');
  if (!inSubjectSet(input.principal, settings.subjects)) await refuse(`${input.principal.id} may not use break-glass`, 'Request access normally.');
  if (!breakGlassEntitlements(config, input.principal).some((e) => e.target === input.target && e.entitlement === input.entitlement)) {
    await refuse(
      `break-glass does not cover ${input.target}/${input.entitlement}`,
      'GET /api/v1/break-glass/entitlements (the picker in the portal) lists what you may break glass into.',
    );
  }
  checkParameters(resolveEntitlement(context, input.target, input.entitlement), input.parameters);
  if (input.durationMs > settings.maxDurationMs) {
    throw new LapseError('validation_failed', `break-glass lasts at most ${settings.maxDurationMs / 60_000} minutes`, {
      where: 'duration',
      hint: 'Ask for less time; you can break glass again if needed.',
    });
  }
  if (input.reason.trim().length < settings.minReasonLength) {
    throw new LapseError('validation_failed', `break-glass needs a reason of at least ${settings.minReasonLength} characters`, {
      where: 'reason',
      hint: 'Say what is broken and why normal approval cannot wait.',
    });
  }
  const geo = await context.risk.geoFor(context.config());
  return transact(context, async (unit) => {
    // Break-glass is never refused for risk; its risk is recorded, and it counts toward frequentBreakGlass.
    const assessed = await assessRequestRisk(context, unit, input, { breakGlass: true, geo });
    await assessed.record(false);
    let request = decideRequest(
      {
        id: newId('request'),
        kind: 'break_glass',
        principal: input.principal,
        target: input.target,
        entitlement: input.entitlement,
        reason: input.reason,
        ticket: null,
        parameters: input.parameters,
        grantId: null,
      },
      {
        outcome: 'approved',
        policy: null,
        policyVersion: context.config().version,
        reasons: ['break-glass'],
        stages: [],
        durationMs: input.durationMs,
        pendingTimeoutMs: 0,
      },
      unit.now,
    );
    await insertRequest(unit.tx, request, { ...input.client, mfaAt: input.client.mfaAt?.toISOString() });
    request = await openGrant(context, unit, request);
    await unit.audit({
      action: 'break_glass.activated',
      actor: input.principal.id,
      subject: request.id,
      data: {
        ...viaData(input.principal),
        severity: 'critical',
        entitlement: `${input.target}/${input.entitlement}`,
        durationMs: input.durationMs,
        reason: input.reason,
        grant: request.grantId,
        reviewRequired: true,
        risk: riskAuditData(assessed.risk),
      },
    });
    return request;
  });
}

/** An admin or auditor records the mandatory after-the-fact review of a break-glass use. */
export async function reviewBreakGlass(context: EngineContext, raw: BreakGlassReviewInput): Promise<AccessRequest> {
  const input = parseInput(breakGlassReviewInput, raw, 'break-glass review');
  if (!mayReviewBreakGlass(context.config().roles, input.reviewer)) {
    throw new LapseError('forbidden', `${input.reviewer.id} may not review break-glass use`, {
      where: input.requestId,
      hint: 'Admins and auditors review break-glass.',
    });
  }
  return transact(context, async (unit) => {
    const request = await getRequest(unit.tx, input.requestId, { forUpdate: true });
    if (!request || request.kind !== 'break_glass')
      throw new LapseError('not_found', `there is no break-glass request ${input.requestId}`, { where: input.requestId });
    const own = sharePerson(input.reviewer, request.principal);
    if (own !== undefined) {
      throw new LapseError(
        'self_approval',
        `nobody reviews their own break-glass use: ${own} is behind both ${request.id} and this review${own === input.reviewer.id ? '' : ` (${input.reviewer.id} acts through a token ${own} issued)`}`,
        {
          where: request.id,
          hint: 'Another admin or auditor reviews it.',
        },
      );
    }
    const done = await getBreakGlassReview(unit.tx, request.id);
    if (done.reviewedAt !== null) {
      throw new LapseError('conflict', `${request.id} was already reviewed by ${done.reviewedBy ?? 'someone'} at ${done.reviewedAt.toISOString()}`, {
        where: request.id,
        hint: 'Its review is in the audit log (break_glass.reviewed).',
      });
    }
    await markBreakGlassReviewed(unit.tx, request.id, input.reviewer.id, unit.now);
    await unit.audit({
      action: 'break_glass.reviewed',
      actor: input.reviewer.id,
      subject: request.id,
      data: { ...viaData(input.reviewer), comment: input.comment },
    });
    return (await getRequest(unit.tx, request.id))!;
  });
}
