import { LapseError } from '../domain/errors.js';
import type { Engine } from '../engine/index.js';
import type { EffectiveConfig } from '../config/types.js';
import { inSubjectSet, type Principal } from '../domain/principal.js';
import type { AccessRequest } from '../domain/request.js';
import type { Grant } from '../domain/grant.js';

/**
 * Who may see what (object-level authorization). Requesters see their own; approvers see the
 * requests whose stages name them; auditors read everything; admins see everything. A route answers
 * "not found" for what the caller may not see, so ids cannot be probed.
 */
export function isAdmin(config: EffectiveConfig, who: Principal): boolean {
  return inSubjectSet(who, config.roles.admins);
}

export function isAuditor(config: EffectiveConfig, who: Principal): boolean {
  return inSubjectSet(who, config.roles.auditors);
}

/** Admins and auditors: may read every request, grant and audit event. */
export function readsEverything(config: EffectiveConfig, who: Principal): boolean {
  return isAdmin(config, who) || isAuditor(config, who);
}

export function isApproverOf(request: AccessRequest, who: Principal): boolean {
  return request.stages.some((stage) => inSubjectSet(who, stage.approvers));
}

export function canSeeRequest(config: EffectiveConfig, who: Principal, request: AccessRequest): boolean {
  return request.principal.id === who.id || readsEverything(config, who) || isApproverOf(request, who);
}

export function canSeeGrant(config: EffectiveConfig, who: Principal, grant: Grant): boolean {
  return grant.principalId === who.id || readsEverything(config, who);
}

/**
 * Refuses an object the caller may not see as "not found" (so ids cannot be probed), and records
 * the attempt when the object exists: looking at someone else's request or grant is worth knowing.
 */
export async function refuseUnseen(engine: Engine, caller: Principal, kind: 'request' | 'grant', id: string, exists: boolean, route: string): Promise<never> {
  if (exists) await engine.recordSecurityEvent({ action: 'authz.refused', actor: caller.id, subject: id, data: { route, reason: `not allowed to see this ${kind}` } });
  throw new LapseError('not_found', `there is no ${kind} ${id}`, { where: id });
}

/** Refuses (and records) an action the caller's role does not allow. */
export async function refuseRole(engine: Engine, caller: Principal, route: string, message: string, hint: string): Promise<never> {
  await engine.recordSecurityEvent({ action: 'authz.refused', actor: caller.id, data: { route, reason: message } });
  throw new LapseError('forbidden', message, { hint });
}
