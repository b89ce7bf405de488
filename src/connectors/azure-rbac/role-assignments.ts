import type { RoleAssignment } from '@azure/arm-authorization';
import { LapseError } from '../../domain/errors.js';
import { isRefusal, sdkScope, type Arm } from './arm-client.js';
import { grantIdIn } from './grant-names.js';
import { roleGuid } from './role-definitions.js';

/**
 * Plain Azure role assignments (api-version 2022-04-01), for `mode: assignment` and for the
 * direct removal PIM falls back to: create by a name Lapse chooses, find the ones for one
 * principal, role and scope, delete by id. ARM allows one assignment per principal, role and scope
 * and answers a second create — even an identical retry — with 409 RoleAssignmentExists.
 */
export interface Access {
  readonly scope: string;
  readonly roleDefinitionId: string;
  readonly objectId: string;
}

const READ = 'Microsoft.Authorization/roleAssignments/read';
const WRITE = 'Microsoft.Authorization/roleAssignments/write';
const DELETE = 'Microsoft.Authorization/roleAssignments/delete';

/** The id ARM gives an assignment: `<scope>/providers/Microsoft.Authorization/roleAssignments/<name>`. */
export function assignmentId(scope: string, name: string): string {
  return `${scope}/providers/Microsoft.Authorization/roleAssignments/${name}`;
}

/** [scope, name] of an assignment id, or null when it is not one. */
export function splitAssignmentId(id: string): [string, string] | null {
  const match = /^(\/subscriptions\/.+)\/providers\/Microsoft\.Authorization\/roleAssignments\/([0-9a-f-]{36})$/i.exec(id);
  return match ? [match[1]!, match[2]!] : null;
}

export function sameScope(a: string | undefined, b: string): boolean {
  return (a ?? '').replace(/\/$/, '').toLowerCase() === b.replace(/\/$/, '').toLowerCase();
}

/** The assignments of exactly this access (not inherited from above, not below). */
export async function assignmentsOf(arm: Arm, access: Access): Promise<RoleAssignment[]> {
  const filter = `principalId eq '${access.objectId}'`;
  const all = await arm.all('listing role assignments', READ, access.scope, (options) =>
    arm.client.roleAssignments.listForScope(sdkScope(access.scope), { filter, ...options }),
  );
  return all.filter(
    (a) =>
      sameScope(a.scope, access.scope) &&
      roleGuid(a.roleDefinitionId ?? '') === roleGuid(access.roleDefinitionId) &&
      a.principalId?.toLowerCase() === access.objectId,
  );
}

/** Every assignment of the role at exactly the scope, for reconciliation. */
export async function assignmentsAt(arm: Arm, scope: string, roleDefinitionId: string): Promise<RoleAssignment[]> {
  const all = await arm.all('listing role assignments', READ, scope, (options) =>
    arm.client.roleAssignments.listForScope(sdkScope(scope), { filter: 'atScope()', ...options }),
  );
  return all.filter((a) => sameScope(a.scope, scope) && roleGuid(a.roleDefinitionId ?? '') === roleGuid(roleDefinitionId));
}

/**
 * Creates the assignment named `name`, or finds that it exists: ours (that name, or Lapse's note
 * in its description: another grant of the same access) is success; anyone else's is a conflict,
 * since revoking would take away access Lapse never gave.
 */
export async function createAssignment(arm: Arm, access: Access, name: string, description: string, principalType: string): Promise<string> {
  const created = await arm.call(
    'creating a role assignment',
    WRITE,
    access.scope,
    (options) =>
      arm.client.roleAssignments.create(
        sdkScope(access.scope),
        name,
        { roleDefinitionId: access.roleDefinitionId, principalId: access.objectId, principalType, description },
        options,
      ),
    ['RoleAssignmentExists'],
  );
  if (!isRefusal(created)) return created.name ?? name;
  const existing = await assignmentsOf(arm, access);
  const ours = existing.find((a) => a.name?.toLowerCase() === name || grantIdIn(a.description) !== null);
  if (ours?.name) return ours.name;
  if (existing.length > 0) throw standingConflict(arm, access);
  throw new LapseError('connector_failed', `azure-rbac target ${arm.target.name}: ARM says the role assignment exists but does not list it yet`, {
    where: `targets.${arm.target.name}`,
    hint: 'ARM reads lag behind writes for a while; Lapse retries',
  });
}

export function standingConflict(arm: Arm, access: Access): LapseError {
  return new LapseError(
    'conflict',
    `azure-rbac target ${arm.target.name}: principal ${access.objectId} already holds role ${roleGuid(access.roleDefinitionId)} at ${access.scope} through an assignment Lapse did not make; revoking the grant would remove it`,
    {
      where: `targets.${arm.target.name}.entitlements`,
      hint: "remove the standing assignment (or the principal's own PIM activation) first, or grant this role at another scope",
    },
  );
}

/** Deletes one assignment by id; an already-deleted one is fine (ARM answers 204). */
export async function deleteAssignment(arm: Arm, id: string): Promise<void> {
  const parts = splitAssignmentId(id);
  if (!parts)
    throw new LapseError('connector_failed', `azure-rbac target ${arm.target.name}: "${id.slice(0, 200)}" is not a role assignment id`, {
      where: `targets.${arm.target.name}`,
    });
  const [scope, name] = parts;
  await arm.call('deleting a role assignment', DELETE, scope, (options) => arm.client.roleAssignments.delete(sdkScope(scope), name, options), [
    '404',
    'RoleAssignmentNotFound',
  ]);
}
