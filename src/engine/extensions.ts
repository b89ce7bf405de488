import { evaluatePolicy } from '../domain/policy/index.js';
import { LapseError } from '../domain/errors.js';
import { newId } from '../domain/ids.js';
import { viaData } from '../domain/principal.js';
import { decideRequest, type AccessRequest } from '../domain/request.js';
import { getGrant, insertRequest, scheduleJob } from '../store/index.js';
import { rejectIfInputProblem } from './grant-opening.js';
import { auditRefusal, transact, type EngineContext } from './context.js';
import { extendInput, parseInput, type ExtendInput } from './inputs.js';
import { settleApproved } from './requests.js';
import { requireGrant } from './grant-ending.js';
import { factsAuditData, gatherFacts, requestLabels } from './policy-inputs.js';

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
  // Looked up before the transaction, for the grant as read now (the transaction re-reads it).
  const config = context.config();
  const facts =
    known && known.principalId === input.by.id
      ? await gatherFacts(context, config, { principal: input.by, target: known.target, entitlement: known.entitlement, ticket: input.ticket })
      : {};
  return transact(context, async (unit) => {
    const grant = await requireGrant(unit, input.grantId, (g) => g.principalId === input.by.id);
    if (grant.status !== 'active') {
      throw new LapseError('invalid_transition', `grant ${grant.id} is ${grant.status}; only active grants can be extended`, { where: grant.id });
    }
    const decision = evaluatePolicy(config.policies, {
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
      labels: requestLabels(config, grant.target, grant.entitlement),
      facts,
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
        ...factsAuditData(facts),
      },
    });
    if (request.status === 'approved') request = await settleApproved(context, unit, request);
    if (request.status === 'pending' && request.pendingUntil) await scheduleJob(unit.tx, 'request_timeout', request.id, { at: request.pendingUntil });
    return request;
  });
}
