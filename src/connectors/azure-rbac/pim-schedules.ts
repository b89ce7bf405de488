import { randomUUID } from 'node:crypto';
import type { RoleAssignmentScheduleInstance, RoleAssignmentScheduleRequest } from '@azure/arm-authorization';
import { LapseError } from '../../domain/errors.js';
import { isRefusal, sdkScope, type Arm, type Refusal } from './arm-client.js';
import { TICKET_SYSTEM, grantIdIn } from './grant-names.js';
import { roleGuid } from './role-definitions.js';
import { sameScope, type Access } from './role-assignments.js';

/**
 * PIM for Azure resources through ARM (api-version 2020-10-01): active assignments made, changed
 * and removed with role assignment schedule requests (AdminAssign / AdminUpdate / AdminRemove),
 * read back through schedule instances. An instance is Lapse's when the AdminAssign request that
 * made its schedule carries Lapse's ticket (system "Lapse", number = the grant id).
 */
const REQUEST_READ = 'Microsoft.Authorization/roleAssignmentScheduleRequests/read';
const REQUEST_WRITE = 'Microsoft.Authorization/roleAssignmentScheduleRequests/write';
const INSTANCE_READ = 'Microsoft.Authorization/roleAssignmentScheduleInstances/read';

/** Request states after which no access exists or will exist because of the request. */
const ENDED = new Set(['Denied', 'Failed', 'Canceled', 'Revoked', 'AdminDenied', 'TimedOut', 'FailedAsResourceIsLocked', 'Invalid']);

/** Pending states that are PIM's own processing, not waiting for a person. */
const IN_PROGRESS = new Set(['PendingProvisioning', 'PendingScheduleCreation', 'PendingEvaluation', 'PendingRevocation']);

export interface RequestBody {
  readonly requestType: 'AdminAssign' | 'AdminUpdate' | 'AdminRemove';
  readonly start?: Date;
  readonly end?: Date;
  readonly justification: string;
  /** The ticket number: the grant id, or what Lapse is doing when no grant is involved. */
  readonly ticket: string;
}

export async function getRequest(arm: Arm, scope: string, name: string): Promise<RoleAssignmentScheduleRequest | null> {
  const found = await arm.call(
    'reading a PIM request',
    REQUEST_READ,
    scope,
    (options) => arm.client.roleAssignmentScheduleRequests.get(sdkScope(scope), name, options),
    ['404'],
  );
  return isRefusal(found) ? null : found;
}

/**
 * Sends one request. Resolves with the request, or a Refusal for the codes the caller handles:
 * RoleAssignmentExists, RoleAssignmentDoesNotExist, ActiveDurationTooShort, and
 * RoleAssignmentRequestExists (the same name was sent before: a retry).
 */
export async function submit(arm: Arm, access: Access, name: string, body: RequestBody): Promise<RoleAssignmentScheduleRequest | Refusal> {
  const request: RoleAssignmentScheduleRequest = {
    principalId: access.objectId,
    roleDefinitionId: access.roleDefinitionId,
    requestType: body.requestType,
    justification: body.justification,
    ticketInfo: { ticketSystem: TICKET_SYSTEM, ticketNumber: body.ticket },
    ...(body.end ? { scheduleInfo: { startDateTime: body.start ?? new Date(), expiration: { type: 'AfterDateTime', endDateTime: body.end } } } : {}),
  };
  const sent = await arm.call(
    `PIM ${body.requestType}`,
    REQUEST_WRITE,
    access.scope,
    (options) => arm.client.roleAssignmentScheduleRequests.create(sdkScope(access.scope), name, request, options),
    ['RoleAssignmentExists', 'RoleAssignmentDoesNotExist', 'ActiveDurationTooShort', 'RoleAssignmentRequestExists'],
  );
  if (!isRefusal(sent)) checkStatus(arm, sent, access);
  return sent;
}

/** A request PIM accepted but parked (approval) or turned down is not access: say so. */
export function checkStatus(arm: Arm, request: RoleAssignmentScheduleRequest, access: Access): void {
  const status = request.status ?? '';
  const parked = status.startsWith('Pending') && !IN_PROGRESS.has(status);
  if (request.requestType === 'AdminRemove' || (!parked && !ENDED.has(status))) return;
  throw new LapseError(
    'connector_failed',
    `azure-rbac target ${arm.target.name}: PIM left the ${request.requestType ?? ''} request for role ${roleGuid(access.roleDefinitionId)} at ${access.scope} in state ${status}`,
    {
      where: `targets.${arm.target.name}.entitlements`,
      hint: status.startsWith('Pending')
        ? 'the PIM settings of this role require approval for active assignments; Lapse approves requests itself, so turn PIM approval off for this role, or use mode: assignment (cancel the pending request in the portal)'
        : 'see the request in PIM > Azure resources > Assignments for why',
    },
  );
}

/** Whether the request ended without giving access (denied, failed, canceled, removed). */
export function ended(request: RoleAssignmentScheduleRequest): boolean {
  return ENDED.has(request.status ?? '');
}

/** The active instances of exactly this access (PIM lists standing assignments as instances too). */
export async function instancesOf(arm: Arm, access: Access): Promise<RoleAssignmentScheduleInstance[]> {
  const filter = `principalId eq '${access.objectId}'`;
  const all = await arm.all('listing PIM assignments', INSTANCE_READ, access.scope, (options) =>
    arm.client.roleAssignmentScheduleInstances.listForScope(sdkScope(access.scope), { filter, ...options }),
  );
  return all.filter(
    (i) =>
      sameScope(i.scope, access.scope) &&
      roleGuid(i.roleDefinitionId ?? '') === roleGuid(access.roleDefinitionId) &&
      i.principalId?.toLowerCase() === access.objectId,
  );
}

/** Every active instance of the role at exactly the scope, for reconciliation. */
export async function instancesAt(arm: Arm, scope: string, roleDefinitionId: string): Promise<RoleAssignmentScheduleInstance[]> {
  const all = await arm.all('listing PIM assignments', INSTANCE_READ, scope, (options) =>
    arm.client.roleAssignmentScheduleInstances.listForScope(sdkScope(scope), { filter: 'atScope()', ...options }),
  );
  return all.filter((i) => sameScope(i.scope, scope) && roleGuid(i.roleDefinitionId ?? '') === roleGuid(roleDefinitionId));
}

/**
 * Which grant made each schedule: the AdminAssign requests at the scope (for one principal, or
 * all) that carry Lapse's ticket, by the schedule they created (lower-cased id).
 */
export async function lapseSchedules(arm: Arm, scope: string, objectId?: string): Promise<Map<string, string>> {
  const filter = objectId ? `principalId eq '${objectId}'` : 'atScope()';
  const requests = await arm.all('listing PIM requests', REQUEST_READ, scope, (options) =>
    arm.client.roleAssignmentScheduleRequests.listForScope(sdkScope(scope), { filter, ...options }),
  );
  const schedules = new Map<string, string>();
  for (const r of requests) {
    const grantId = r.ticketInfo?.ticketSystem === TICKET_SYSTEM ? grantIdIn(r.ticketInfo.ticketNumber) : null;
    if (r.requestType === 'AdminAssign' && grantId && r.targetRoleAssignmentScheduleId && !ended(r))
      schedules.set(r.targetRoleAssignmentScheduleId.toLowerCase(), grantId);
  }
  return schedules;
}

/** The grant that made an instance, or null when it is not Lapse's. */
export function grantOfInstance(instance: RoleAssignmentScheduleInstance, schedules: ReadonlyMap<string, string>): string | null {
  return schedules.get((instance.roleAssignmentScheduleId ?? '').toLowerCase()) ?? null;
}

/** A fresh name for a removal: removals are never repeated under one name (PIM refuses a reused name). */
export function removalName(): string {
  return randomUUID();
}
