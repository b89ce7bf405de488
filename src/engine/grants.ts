import { evaluatePolicy } from '../domain/policy/index.js';
import { LapseError } from '../domain/errors.js';
import { beginRevoke, completeRevoke, type EndReason } from '../domain/grant.js';
import { newId } from '../domain/ids.js';
import { inSubjectSet, sharePerson, viaData, type Principal } from '../domain/principal.js';
import { decideRequest, type AccessRequest } from '../domain/request.js';
import {
  cancelJob,
  findGrantInForce,
  getBreakGlassReview,
  getGrant,
  getRequest,
  insertRequest,
  markBreakGlassReviewed,
  scheduleJob,
  takeCredentials,
  updateGrant,
  type StoredGrant,
} from '../store/index.js';
import { openGrant, rejectIfInputProblem } from './approvals.js';
import { breakGlassEntitlements } from './break-glass-scope.js';
import { auditRefusal, checkParameters, resolveEntitlement, transact, type EngineContext, type UnitOfWork } from './context.js';
import {
  breakGlassInput,
  breakGlassReviewInput,
  endGrantInput,
  extendInput,
  fetchCredentialsInput,
  parseInput,
  type BreakGlassInput,
  type BreakGlassReviewInput,
  type EndGrantInput,
  type ExtendInput,
  type FetchCredentialsInput,
} from './inputs.js';
import { credentialsContext } from './provisioning.js';
import { settleApproved } from './requests.js';
import { mayEndAnyGrant, mayReviewBreakGlass } from '../domain/authorization.js';

function isAdmin(context: EngineContext, who: Principal): boolean {
  return mayEndAnyGrant(context.config().roles, who);
}

/** Loads a grant for change; to a caller who may not see it, it does not exist. */
async function requireGrant(unit: UnitOfWork, id: string, visible: (grant: StoredGrant) => boolean): Promise<StoredGrant> {
  const grant = await getGrant(unit.tx, id, { forUpdate: true });
  if (!grant || !visible(grant)) throw new LapseError('not_found', `there is no grant ${id}`, { where: id });
  return grant;
}

/**
 * Starts ending a grant (release, admin revoke). The revoke itself runs in the scheduler, outside
 * this transaction, retried until the target confirms.
 */
async function endGrant(context: EngineContext, unit: UnitOfWork, grant: StoredGrant, reason: EndReason, by: Principal, note: string): Promise<StoredGrant> {
  const ending = beginRevoke(grant, reason, by.id, unit.now);
  await updateGrant(unit.tx, ending);
  await cancelJob(unit.tx, 'expire', grant.id);
  await scheduleJob(unit.tx, 'revoke', grant.id, { delayMs: 0 });
  unit.wake();
  await unit.audit({
    action: `grant.${reason}`,
    actor: by.id,
    subject: grant.id,
    data: { ...viaData(by), reason: note, entitlement: `${grant.target}/${grant.entitlement}` },
  });
  return { ...grant, ...ending };
}

/** The holder gives access back before it expires. */
export async function releaseGrant(context: EngineContext, raw: EndGrantInput): Promise<StoredGrant> {
  const input = parseInput(endGrantInput, raw, 'release');
  return transact(context, async (unit) => {
    const grant = await requireGrant(unit, input.grantId, (g) => g.principalId === input.by.id);
    return endGrant(context, unit, grant, 'released', input.by, input.reason);
  });
}

/** An admin takes access away now. */
export async function revokeGrant(context: EngineContext, raw: EndGrantInput): Promise<StoredGrant> {
  const input = parseInput(endGrantInput, raw, 'revoke');
  if (!isAdmin(context, input.by)) {
    await auditRefusal(context, {
      action: 'grant.revoke_refused',
      actor: input.by.id,
      subject: input.grantId,
      data: { ...viaData(input.by), code: 'forbidden' },
    });
    throw new LapseError('forbidden', `${input.by.id} is not an admin`, {
      where: input.grantId,
      hint: 'Only admins (roles.admins) may revoke grants; holders can release their own.',
    });
  }
  if (input.reason.trim().length === 0) {
    throw new LapseError('validation_failed', 'a revoke needs a reason', {
      where: 'reason',
      hint: 'Say why the access is taken away; it goes to the audit log.',
    });
  }
  return transact(context, async (unit) => {
    const grant = await requireGrant(unit, input.grantId, () => true);
    return endGrant(context, unit, grant, 'revoked', input.by, input.reason);
  });
}

/**
 * An admin closes a grant whose revoke keeps failing (the target is gone for good, say). The only
 * way out of `revoking` other than a confirmed revoke; loud in the audit log.
 */
export async function forceCloseGrant(context: EngineContext, raw: EndGrantInput): Promise<StoredGrant> {
  const input = parseInput(endGrantInput, raw, 'force-close');
  if (!isAdmin(context, input.by)) throw new LapseError('forbidden', `${input.by.id} is not an admin`, { where: input.grantId });
  if (input.reason.trim().length < 10) {
    throw new LapseError('validation_failed', 'force-closing needs a reason of at least 10 characters', {
      where: 'reason',
      hint: 'Explain how the access was removed or why it no longer exists.',
    });
  }
  return transact(context, async (unit) => {
    const grant = await requireGrant(unit, input.grantId, () => true);
    const closed = completeRevoke(grant, unit.now);
    await updateGrant(unit.tx, closed);
    await cancelJob(unit.tx, 'revoke', grant.id);
    await unit.audit({
      action: 'grant.force_closed',
      actor: input.by.id,
      subject: grant.id,
      data: { ...viaData(input.by), reason: input.reason, lastError: grant.lastError, severity: 'high' },
    });
    return { ...grant, ...closed };
  });
}

/** The holder asks for more time. The policy decides; access stays continuous either way. */
export async function requestExtension(context: EngineContext, raw: ExtendInput): Promise<AccessRequest> {
  const input = parseInput(extendInput, raw, 'extension');
  // NB. Break-glass skips approval and is capped by breakGlass.maxDuration; an extension under the
  // entitlement's ordinary policy (which may extend without approval) would stretch it past that
  // cap unapproved. So it cannot be extended at all. (A grant's breakGlass flag never changes.)
  const known = await getGrant(context.store.db, input.grantId);
  if (known?.breakGlass && known.principalId === input.by.id) {
    const message = `grant ${known.id} is a break-glass grant; break-glass grants cannot be extended`;
    await auditRefusal(context, {
      action: 'extension.refused',
      actor: input.by.id,
      subject: known.id,
      data: { code: 'forbidden', message, breakGlass: true, severity: 'high' },
    });
    throw new LapseError('forbidden', message, {
      where: known.id,
      hint: `Break glass again if the emergency goes on (each use is capped at ${context.config().breakGlass.maxDurationMs / 60_000} minutes and reviewed), or request the access normally.`,
    });
  }
  return transact(context, async (unit) => {
    const grant = await requireGrant(unit, input.grantId, (g) => g.principalId === input.by.id);
    if (grant.status !== 'active') {
      throw new LapseError('invalid_transition', `grant ${grant.id} is ${grant.status}; only active grants can be extended`, { where: grant.id });
    }
    const decision = evaluatePolicy(context.config().policies, {
      principal: input.by,
      target: grant.target,
      entitlement: grant.entitlement,
      durationMs: input.durationMs,
      reason: input.reason,
      ticket: input.ticket,
      kind: 'extension',
      extension: { count: grant.extensions, totalMs: grant.durationMs },
      client: input.client,
      now: unit.now,
    });
    rejectIfInputProblem(decision, grant.id);
    let request = decideRequest(
      {
        id: newId('request'),
        kind: 'extension',
        principal: input.by,
        target: grant.target,
        entitlement: grant.entitlement,
        reason: input.reason,
        ticket: input.ticket ?? null,
        parameters: grant.parameters,
        grantId: grant.id,
      },
      decision,
      unit.now,
    );
    await insertRequest(unit.tx, request, { ...input.client, mfaAt: input.client.mfaAt?.toISOString() });
    await unit.audit({
      action: `extension.${request.status}`,
      actor: input.by.id,
      subject: request.id,
      data: {
        ...viaData(input.by),
        grant: grant.id,
        byMs: request.durationMs,
        policy: decision.policy,
        policyVersion: decision.policyVersion,
        reasons: decision.reasons,
      },
    });
    if (request.status === 'approved') request = await settleApproved(context, unit, request);
    if (request.status === 'pending' && request.pendingUntil) await scheduleJob(unit.tx, 'request_timeout', request.id, { at: request.pendingUntil });
    return request;
  });
}

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
  return transact(context, async (unit) => {
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

export interface AccessCheck {
  readonly allowed: boolean;
  readonly grantId: string | null;
  readonly expiresAt: Date | null;
}

/** Does the principal hold the entitlement right now? Says no at expiresAt + 0, by the database clock. */
export async function checkAccess(context: EngineContext, principalId: string, target: string, entitlement: string): Promise<AccessCheck> {
  const grant = await findGrantInForce(context.store.db, principalId, target, entitlement);
  return grant ? { allowed: true, grantId: grant.id, expiresAt: grant.expiresAt } : { allowed: false, grantId: null, expiresAt: null };
}

/**
 * The grant's principal fetches the credentials its connector issued (an ephemeral account's
 * password, a certificate). Handed out once: the sealed copy is deleted in the same transaction,
 * so a second fetch, by anyone, finds nothing.
 */
export async function fetchCredentials(context: EngineContext, raw: FetchCredentialsInput): Promise<Record<string, string>> {
  const input = parseInput(fetchCredentialsInput, raw, 'credentials');
  return transact(context, async (unit) => {
    const grant = await requireGrant(unit, input.grantId, (g) => g.principalId === input.by.id);
    if (grant.status !== 'active') {
      throw new LapseError('invalid_transition', `grant ${grant.id} is ${grant.status}; credentials are handed out only while it is active`, {
        where: grant.id,
        ...(grant.status === 'provisioning' ? { hint: 'Wait until the grant is active, then fetch them.' } : {}),
      });
    }
    const held = await takeCredentials(unit.tx, grant.id);
    if (!held) {
      throw new LapseError('gone', `there are no credentials waiting for grant ${grant.id}`, {
        where: grant.id,
        hint: 'Credentials are handed out once and then erased; if they were lost, release the grant and request access again.',
      });
    }
    const credentials = JSON.parse(context.sealer.open(held.sealed, credentialsContext(grant.id))) as Record<string, string>;
    await unit.audit({
      action: 'grant.credentials_fetched',
      actor: input.by.id,
      subject: grant.id,
      data: { ...viaData(input.by), entitlement: `${grant.target}/${grant.entitlement}`, fields: Object.keys(credentials).sort() },
    });
    return credentials;
  });
}
