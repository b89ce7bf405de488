import type { RoleAssignmentScheduleInstance } from '@azure/arm-authorization';
import type { TargetConfig } from '../../config/types.js';
import { LapseError } from '../../domain/errors.js';
import type { AccessHandle, Connector, CurrentAccess, GrantSpec, ProvisionResult, RevokeResult } from '../types.js';
import { Arm, isRefusal, sdkScope, type Refusal } from './arm-client.js';
import { assignmentName, grantIdIn, grantNote, updateRequestName } from './grant-names.js';
import { checkStatus, ended, getRequest, grantOfInstance, instancesAt, instancesOf, lapseSchedules, removalName, submit } from './pim-schedules.js';
import { resolveRole, roleGuid } from './role-definitions.js';
import {
  assignmentId,
  assignmentsAt,
  assignmentsOf,
  createAssignment,
  deleteAssignment,
  sameScope,
  splitAssignmentId,
  standingConflict,
  type Access,
} from './role-assignments.js';
import { GUID, objectIdOf, parseEntitlement, parseTarget, scopeProblem, targetProblems, type AzureTarget } from './settings.js';
import { checkTarget } from './target-check.js';

/**
 * Azure RBAC: a role at a scope for the requester's Entra object id.
 *
 * - `mode: pim` (default): a PIM active assignment (AdminAssign schedule request) ending at the
 *   grant's end, so Azure removes it by itself if Lapse cannot; revoke sends AdminRemove.
 * - `mode: assignment`: a plain role assignment (no expiry at Azure); revoke deletes it.
 *
 * Requests and assignments are named from the grant id and carry it (justification, ticket,
 * description), so repeats are idempotent and reconciliation knows Lapse's own. Azure keeps one
 * assignment per principal, role and scope: grants of the same access share it (one access key).
 * ARM reads lag behind writes, so revoke reads back and reports `propagationPending` until the
 * assignment is gone from the listing.
 */
const RECHECK_MS = 10_000;

interface Resolved {
  readonly arm: Arm;
  readonly settings: AzureTarget;
  readonly access: Access;
  readonly mode: 'pim' | 'assignment';
}

export class AzureRbacConnector implements Connector {
  readonly type = 'azure-rbac';

  validateSettings(target: TargetConfig): string[] {
    return targetProblems(target);
  }

  checkTarget(target: TargetConfig, signal: AbortSignal): Promise<void> {
    return checkTarget(target, signal);
  }

  accessKey(grant: GrantSpec): string {
    const settings = parseTarget(grant.target);
    const { scope, role } = parseEntitlement(grant.entitlement);
    // NB. A role named by GUID or by id is the same role; a role named by name stays its name.
    const roleKey = GUID.test(role) || role.startsWith('/') ? roleGuid(role) : role.toLowerCase();
    return `${grant.target.name}/${scope.toLowerCase()}/${roleKey}/${objectIdOf(grant.target, settings, grant.principalId)}`;
  }

  async provision(grant: GrantSpec, signal: AbortSignal): Promise<ProvisionResult> {
    const { arm, settings, access, mode } = await resolve(grant, null, signal);
    const name = assignmentName(grant.grantId);
    const note = grantNote(grant.grantId, grant.target.name, grant.entitlement.name, grant.principalId);
    const handle = { mode, scope: access.scope, roleDefinitionId: access.roleDefinitionId, objectId: access.objectId, name };
    if (mode === 'assignment') return { handle: { ...handle, name: await createAssignment(arm, access, name, note, settings.principalType) } };

    let request = await getRequest(arm, access.scope, name);
    if (!request) {
      const sent = await submit(arm, access, name, { requestType: 'AdminAssign', end: grant.notAfter, justification: note, ticket: grant.grantId });
      if (!isRefusal(sent)) return { handle };
      if (sent.code === 'RoleAssignmentExists') return { handle: { ...handle, sharedWith: await joinLapseAssignment(arm, access, grant) } };
      if (sent.code !== 'RoleAssignmentRequestExists') throw unexpected(arm, sent, access);
      request = await getRequest(arm, access.scope, name);
      if (!request)
        throw new LapseError('connector_failed', `azure-rbac target ${arm.target.name}: PIM says request ${name} exists but does not return it yet`, {
          hint: 'Lapse retries',
        });
    }
    // A repeated provision (after a crash): the first one's request stands.
    if (ended(request)) {
      throw new LapseError(
        'connector_failed',
        `azure-rbac target ${arm.target.name}: the PIM request of grant ${grant.grantId} ended as ${request.status ?? '?'}`,
        {
          where: `targets.${arm.target.name}`,
          hint: 'see the request in PIM > Azure resources for why; request the access again',
        },
      );
    }
    checkStatus(arm, request, access);
    return { handle };
  }

  async extend(grant: GrantSpec, handle: AccessHandle | null, signal: AbortSignal): Promise<void> {
    const { arm, access, mode } = await resolve(grant, handle, signal);
    // Plain role assignments have no end at Azure: nothing to move.
    if (mode === 'assignment') return;
    const mine = await lapseInstance(arm, access);
    if (!mine) {
      throw new LapseError('connector_failed', `azure-rbac target ${arm.target.name}: there is no PIM assignment of grant ${grant.grantId} to extend`, {
        where: `targets.${arm.target.name}`,
        hint: 'it was removed outside Lapse, or PIM ended it; revoke the grant and request it again',
      });
    }
    await extendTo(arm, access, mine, grant);
  }

  async revoke(grant: GrantSpec, handle: AccessHandle | null, signal: AbortSignal): Promise<RevokeResult | void> {
    const resolved = await resolve(grant, handle, signal);
    return resolved.mode === 'assignment' ? revokeAssignment(resolved, grant, handle) : revokePim(resolved, grant);
  }

  async listAccess(target: TargetConfig, signal: AbortSignal): Promise<CurrentAccess[]> {
    const settings = parseTarget(target);
    const arm = new Arm(target, settings, signal);
    const principalOf = new Map(Object.entries(settings.objectIds).map(([principal, id]) => [id.toLowerCase(), principal]));
    const schedulesAt = new Map<string, Promise<Map<string, string>>>();
    const found: CurrentAccess[] = [];
    for (const entitlement of target.entitlements.values()) {
      const { scope, role, mode } = parseEntitlement(entitlement);
      const roleDefinitionId = await resolveRole(arm, scope, role, entitlement.name);
      const entry = (account: string, objectId: string, grantId: string | null): CurrentAccess => ({
        account,
        principalId: principalOf.get(objectId.toLowerCase()) ?? objectId.toLowerCase(),
        entitlement: entitlement.name,
        grantId,
      });
      if (mode === 'assignment') {
        for (const a of await assignmentsAt(arm, scope, roleDefinitionId))
          if (a.id && a.principalId) found.push(entry(a.id, a.principalId, grantIdIn(a.description)));
        continue;
      }
      const key = scope.toLowerCase();
      if (!schedulesAt.has(key)) schedulesAt.set(key, lapseSchedules(arm, scope));
      const schedules = await schedulesAt.get(key)!;
      for (const i of await instancesAt(arm, scope, roleDefinitionId)) {
        const account = i.originRoleAssignmentId ?? i.id;
        if (account && i.principalId) found.push(entry(account, i.principalId, grantOfInstance(i, schedules)));
      }
    }
    return found;
  }

  async removeAccess(target: TargetConfig, access: CurrentAccess, signal: AbortSignal): Promise<void> {
    const settings = parseTarget(target);
    const config = target.entitlements.get(access.entitlement);
    if (!config)
      throw new LapseError('not_found', `azure-rbac target ${target.name} has no entitlement ${access.entitlement}`, {
        where: `targets.${target.name}.entitlements`,
      });
    const { scope, mode } = parseEntitlement(config);
    const parts = splitAssignmentId(access.account);
    if (!parts || !sameScope(parts[0], scope)) {
      throw new LapseError('connector_failed', `azure-rbac target ${target.name}: "${access.account.slice(0, 300)}" is not a role assignment at ${scope}`, {
        where: `targets.${target.name}.entitlements.${access.entitlement}`,
      });
    }
    const arm = new Arm(target, settings, signal);
    if (mode === 'pim') {
      const found = await arm.call(
        'reading a role assignment',
        'Microsoft.Authorization/roleAssignments/read',
        scope,
        (o) => arm.client.roleAssignments.get(sdkScope(parts[0]), parts[1], o),
        ['404'],
      );
      if (isRefusal(found)) return;
      const held: Access = { scope, roleDefinitionId: found.roleDefinitionId ?? '', objectId: (found.principalId ?? '').toLowerCase() };
      const sent = await submit(arm, held, removalName(), {
        requestType: 'AdminRemove',
        justification: `Lapse reconciliation: ${access.grantId ? `grant ${access.grantId} has ended` : 'no Lapse grant covers this access'}`,
        ticket: access.grantId ?? 'reconciliation',
      });
      if (!isRefusal(sent) || sent.code === 'RoleAssignmentDoesNotExist') return;
      if (sent.code !== 'ActiveDurationTooShort') throw unexpected(arm, sent, held);
    }
    await deleteAssignment(arm, access.account);
  }
}

/** Settings, the ARM client and the access (scope, role id, object id): from the handle when there is one. */
async function resolve(grant: GrantSpec, handle: AccessHandle | null, signal: AbortSignal): Promise<Resolved> {
  const settings = parseTarget(grant.target);
  const entitlement = parseEntitlement(grant.entitlement);
  const arm = new Arm(grant.target, settings, signal);
  const from = (key: string, ok: (v: string) => boolean) => (typeof handle?.[key] === 'string' && ok(handle[key]) ? handle[key] : undefined);
  const scope = from('scope', (v) => scopeProblem(v) === undefined) ?? entitlement.scope;
  const objectId = from('objectId', (v) => GUID.test(v)) ?? objectIdOf(grant.target, settings, grant.principalId);
  const roleDefinitionId =
    from('roleDefinitionId', (v) => /^\/subscriptions\/[0-9a-f-]{36}\/providers\/Microsoft\.Authorization\/roleDefinitions\/[0-9a-f-]{36}$/i.test(v)) ??
    (await resolveRole(arm, scope, entitlement.role, grant.entitlement.name));
  const mode = handle?.mode === 'assignment' || handle?.mode === 'pim' ? handle.mode : entitlement.mode;
  return { arm, settings, access: { scope, roleDefinitionId, objectId }, mode };
}

/** The active PIM instance of this access that a Lapse grant made, if any. */
async function lapseInstance(arm: Arm, access: Access): Promise<RoleAssignmentScheduleInstance | undefined> {
  const instances = await instancesOf(arm, access);
  if (instances.length === 0) return undefined;
  const schedules = await lapseSchedules(arm, access.scope, access.objectId);
  return instances.find((i) => grantOfInstance(i, schedules) !== null);
}

/**
 * AdminAssign found the role already assigned: fine when another Lapse grant made it (grants of
 * the same access share it; its end moves to cover this grant too), a conflict otherwise.
 */
async function joinLapseAssignment(arm: Arm, access: Access, grant: GrantSpec): Promise<string> {
  const instances = await instancesOf(arm, access);
  const schedules = instances.length > 0 ? await lapseSchedules(arm, access.scope, access.objectId) : new Map<string, string>();
  const mine = instances.find((i) => grantOfInstance(i, schedules) !== null);
  if (!mine) {
    if (instances.length > 0) throw standingConflict(arm, access);
    throw new LapseError('connector_failed', `azure-rbac target ${arm.target.name}: PIM says the role is assigned but does not list the assignment yet`, {
      hint: 'ARM reads lag; Lapse retries',
    });
  }
  await extendTo(arm, access, mine, grant);
  return grantOfInstance(mine, schedules)!;
}

/**
 * Moves a PIM assignment's end later, to the grant's end. Never earlier: grants of the same access
 * share the assignment, and another may still need the time.
 */
async function extendTo(arm: Arm, access: Access, instance: RoleAssignmentScheduleInstance, grant: GrantSpec): Promise<void> {
  if (!instance.endDateTime || instance.endDateTime.getTime() >= grant.notAfter.getTime()) return;
  const sent = await submit(arm, access, updateRequestName(grant.grantId, grant.notAfter), {
    requestType: 'AdminUpdate',
    start: instance.startDateTime ?? new Date(),
    end: grant.notAfter,
    justification: grantNote(grant.grantId, grant.target.name, grant.entitlement.name, grant.principalId),
    ticket: grant.grantId,
  });
  if (isRefusal(sent) && sent.code !== 'RoleAssignmentRequestExists') throw unexpected(arm, sent, access);
}

async function revokePim({ arm, access }: Resolved, grant: GrantSpec): Promise<RevokeResult | void> {
  const own = await getRequest(arm, access.scope, assignmentName(grant.grantId));
  const before = await instancesOf(arm, access);
  // NB. Our own request, read by name, is fresher than the request listing, and reading the
  // principal's whole request history (it only grows) is needed only for an instance it does not explain.
  const ownSchedule = own && !ended(own) ? own.targetRoleAssignmentScheduleId?.toLowerCase() : undefined;
  const unexplained = before.some((i) => i.roleAssignmentScheduleId?.toLowerCase() !== ownSchedule);
  const schedules = unexplained ? await lapseSchedules(arm, access.scope, access.objectId) : new Map<string, string>();
  if (ownSchedule) schedules.set(ownSchedule, grant.grantId);
  const ours = before.filter((i) => grantOfInstance(i, schedules) !== null);
  const others = new Set(before.filter((i) => grantOfInstance(i, schedules) === null).map((i) => i.id?.toLowerCase()));
  // An assignment nobody at Lapse made is never removed; our request with nothing listed yet is (reads lag).
  const ownUnseen = own !== null && !ended(own) && before.length === 0;
  if (ours.length > 0 || ownUnseen) {
    const sent = await submit(arm, access, removalName(), {
      requestType: 'AdminRemove',
      justification: `${grantNote(grant.grantId, grant.target.name, grant.entitlement.name, grant.principalId)} has ended`,
      ticket: grant.grantId,
    });
    if (isRefusal(sent) && sent.code === 'ActiveDurationTooShort') {
      // PIM will not remove an assignment in its first five minutes; the role assignment under it can go now.
      const ids = ours.map((i) => i.originRoleAssignmentId).filter((id): id is string => typeof id === 'string');
      if (ids.length === 0) ids.push(...(await assignmentsOf(arm, access)).map((a) => a.id!).filter(Boolean));
      if (ids.length === 0) {
        throw new LapseError(
          'connector_failed',
          `azure-rbac target ${arm.target.name}: PIM refuses to remove the assignment of grant ${grant.grantId} in its first five minutes, and ARM does not list it yet`,
          {
            hint: 'Lapse retries until one of the two works',
          },
        );
      }
      for (const id of ids) await deleteAssignment(arm, id);
    } else if (isRefusal(sent) && sent.code !== 'RoleAssignmentDoesNotExist') {
      throw unexpected(arm, sent, access);
    }
  }
  const still = (await instancesOf(arm, access)).filter((i) => !others.has(i.id?.toLowerCase()));
  if (still.length > 0) return pending(access);
}

async function revokeAssignment({ arm, access }: Resolved, grant: GrantSpec, handle: AccessHandle | null): Promise<RevokeResult | void> {
  const names = new Set([assignmentName(grant.grantId), ...(typeof handle?.name === 'string' && GUID.test(handle.name) ? [handle.name.toLowerCase()] : [])]);
  const visible = await assignmentsOf(arm, access);
  const ids = new Set([...names].map((n) => assignmentId(access.scope, n).toLowerCase()));
  for (const a of visible) if (a.id && (names.has(a.name?.toLowerCase() ?? '') || grantIdIn(a.description))) ids.add(a.id.toLowerCase());
  for (const id of ids) await deleteAssignment(arm, id);
  const still = (await assignmentsOf(arm, access)).filter((a) => ids.has(a.id?.toLowerCase() ?? ''));
  if (still.length > 0) return pending(access);
}

function pending(access: Access): RevokeResult {
  return {
    propagationPending: `Azure accepted the removal of role ${roleGuid(access.roleDefinitionId)} for ${access.objectId} at ${access.scope}, but ARM still lists it (its reads can lag for minutes)`,
    recheckInMs: RECHECK_MS,
  };
}

function unexpected(arm: Arm, refusal: Refusal, access: Access): LapseError {
  return new LapseError(
    'connector_failed',
    `azure-rbac target ${arm.target.name}: ARM answered HTTP ${refusal.status ?? '?'} (${refusal.code}: ${refusal.message}) for role ${roleGuid(access.roleDefinitionId)} at ${access.scope}`,
    {
      where: `targets.${arm.target.name}`,
    },
  );
}
