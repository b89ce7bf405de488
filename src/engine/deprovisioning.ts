import { z } from 'zod';
import { LapseError } from '../domain/errors.js';
import { withdrawForDeprovisioning } from '../domain/request.js';
import {
  cancelJob,
  endSessionsOfUser,
  getGrant,
  getRequest,
  getUserByName,
  lockUser,
  pendingRequestIdsOf,
  revokeTokensOfUser,
  setUserDisabled,
  unendedGrantIdsOf,
  updateRequest,
} from '../store/index.js';
import { transact, type EngineContext, type UnitOfWork } from './context.js';
import { endGrant } from './grant-ending.js';

/** Who deprovisions: an admin (API), the offline CLI (`cli:<os user>`), a SCIM token (`scim:<name>`), an LDAP sync (`ldap:<source>`). */
const deprovisionInput = z
  .object({
    name: z.string().min(1).max(128),
    actor: z.string().min(1).max(200),
    reason: z.string().trim().min(1).max(500),
  })
  .strict();
export type DeprovisionInput = z.input<typeof deprovisionInput>;

export interface Deprovisioned {
  readonly user: { readonly id: string; readonly name: string };
  /** False when the person was disabled already (the sweep of what they hold runs again anyway). */
  readonly changed: boolean;
  readonly sessionsEnded: number;
  readonly apiAccessRevoked: number;
  readonly requestsCancelled: readonly string[];
  readonly grantsRevoked: readonly string[];
}

function parsed(raw: DeprovisionInput, where: string) {
  const result = deprovisionInput.safeParse(raw);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    throw new LapseError('validation_failed', `${issue.path.join('.') || 'input'}: ${issue.message}`, {
      where: `${where}.${issue.path.join('.')}`,
      hint: 'A user name (1 to 128 characters) and a reason (1 to 500 characters).',
    });
  }
  return result.data;
}

/**
 * Deprovisioning: a person leaves (or is suspended). In one transaction: they are disabled, every
 * session ends and every API token is revoked (so they can neither sign in nor act, and so can no
 * longer review anything), their pending requests are cancelled, and each grant that holds or is
 * about to hold access starts its revoke (the scheduler removes it at the target, retried until
 * confirmed). Audited as `user.disabled` with what it ended, and each grant as `grant.revoked`
 * with `deprovisioning: true`. Idempotent: running it again sweeps anything left.
 */
export async function deprovisionPerson(context: EngineContext, raw: DeprovisionInput): Promise<Deprovisioned> {
  const input = parsed(raw, 'disable');
  return transact(context, async (unit) => {
    const user = await requireUser(unit, input.name);
    return deprovisionInUnit(context, unit, user, input.actor, input.reason);
  });
}

/**
 * Deprovisioning inside a change already running (SCIM, LDAP sync): the user row must be locked
 * by the caller. See deprovisionPerson.
 */
export async function deprovisionInUnit(
  context: EngineContext,
  unit: UnitOfWork,
  user: { readonly id: string; readonly name: string },
  actor: string,
  reason: string,
): Promise<Deprovisioned> {
  const changed = await setUserDisabled(unit.tx, user.id, { at: unit.now, reason });
  const sessionsEnded = await endSessionsOfUser(unit.tx, user.id);
  const apiAccessRevoked = await revokeTokensOfUser(unit.tx, user.id);
  const requestsCancelled: string[] = [];
  for (const id of await pendingRequestIdsOf(unit.tx, user.name)) {
    const request = await getRequest(unit.tx, id, { forUpdate: true });
    if (!request || request.status !== 'pending') continue;
    await updateRequest(unit.tx, withdrawForDeprovisioning(request, unit.now));
    await cancelJob(unit.tx, 'request_timeout', request.id);
    await unit.audit({ action: 'request.cancelled', actor, subject: request.id, data: { deprovisioning: true, reason } });
    requestsCancelled.push(id);
  }
  const grantsRevoked: string[] = [];
  const by = { id: actor, kind: 'service' as const, groups: [] };
  for (const id of await unendedGrantIdsOf(unit.tx, user.name)) {
    const grant = await getGrant(unit.tx, id, { forUpdate: true });
    if (!grant || (grant.status !== 'active' && grant.status !== 'provisioning')) continue;
    await endGrant(context, unit, grant, 'revoked', by, `deprovisioning: ${reason}`, { deprovisioning: true });
    grantsRevoked.push(id);
  }
  // NB. Audit data keys may not mention tokens (they are redacted as secrets).
  await unit.audit({
    action: changed ? 'user.disabled' : 'user.deprovision_swept',
    actor,
    subject: user.id,
    data: { name: user.name, reason, sessionsEnded, apiAccessRevoked, requestsCancelled, grantsRevoked },
  });
  return { user: { id: user.id, name: user.name }, changed, sessionsEnded, apiAccessRevoked, requestsCancelled, grantsRevoked };
}

/** Lets a person sign in again inside a running change (the caller locked the row); audited when it changed anything. */
export async function reenableInUnit(unit: UnitOfWork, user: { readonly id: string; readonly name: string }, actor: string, reason: string): Promise<boolean> {
  const changed = await setUserDisabled(unit.tx, user.id, null);
  if (changed) await unit.audit({ action: 'user.enabled', actor, subject: user.id, data: { name: user.name, reason } });
  return changed;
}

/**
 * Re-enables a disabled person: they may sign in again. Nothing else comes back: their sessions,
 * tokens, requests and grants stay ended (they ask again). Audited as `user.enabled`.
 */
export async function reenablePerson(context: EngineContext, raw: DeprovisionInput): Promise<{ user: { id: string; name: string }; changed: boolean }> {
  const input = parsed(raw, 'enable');
  return transact(context, async (unit) => {
    const user = await requireUser(unit, input.name);
    return { user: { id: user.id, name: user.name }, changed: await reenableInUnit(unit, user, input.actor, input.reason) };
  });
}

async function requireUser(unit: UnitOfWork, name: string) {
  const user = await getUserByName(unit.tx, name);
  if (!user) {
    throw new LapseError('not_found', `there is no user ${name}`, {
      where: name,
      hint: 'Users are created with `lapse admin user create`, by signing in once, or by SCIM/LDAP.',
    });
  }
  // Serialises with other changes to this person (a concurrent sign-in or SCIM update).
  await lockUser(unit.tx, user.id);
  return user;
}
