import { LapseError } from '../domain/errors.js';
import { beginRevoke, completeRevoke, type EndReason } from '../domain/grant.js';
import { viaData, type Principal } from '../domain/principal.js';
import { cancelJob, getGrant, scheduleJob, updateGrant, type StoredGrant } from '../store/index.js';
import { auditRefusal, transact, type EngineContext, type UnitOfWork } from './context.js';
import { endGrantInput, parseInput, type EndGrantInput } from './inputs.js';
import { mayEndAnyGrant } from '../domain/authorization.js';

function isAdmin(context: EngineContext, who: Principal): boolean {
  return mayEndAnyGrant(context.config().roles, who);
}

/** Loads a grant for change; to a caller who may not see it, it does not exist. */
export async function requireGrant(unit: UnitOfWork, id: string, visible: (grant: StoredGrant) => boolean): Promise<StoredGrant> {
  const grant = await getGrant(unit.tx, id, { forUpdate: true });
  if (!grant || !visible(grant)) throw new LapseError('not_found', `there is no grant ${id}`, { where: id });
  return grant;
}

/**
 * Starts ending a grant (release, admin revoke). The revoke itself runs in the scheduler, outside
 * this transaction, retried until the target confirms.
 */
export async function endGrant(
  context: EngineContext,
  unit: UnitOfWork,
  grant: StoredGrant,
  reason: EndReason,
  by: Principal,
  note: string,
  extra: Record<string, unknown> = {},
): Promise<StoredGrant> {
  const ending = beginRevoke(grant, reason, by.id, unit.now);
  await updateGrant(unit.tx, ending);
  await cancelJob(unit.tx, 'expire', grant.id);
  await scheduleJob(unit.tx, 'revoke', grant.id, { delayMs: 0 });
  unit.wake();
  await unit.audit({
    action: `grant.${reason}`,
    actor: by.id,
    subject: grant.id,
    data: { ...viaData(by), reason: note, entitlement: `${grant.target}/${grant.entitlement}`, ...extra },
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
