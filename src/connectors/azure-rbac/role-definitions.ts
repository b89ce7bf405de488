import { LapseError } from '../../domain/errors.js';
import { sdkScope, type Arm } from './arm-client.js';
import { GUID } from './settings.js';

/**
 * The role definition id an entitlement's `role` names. A GUID or a full id needs no call; a name
 * ("Reader", a custom role's name) is looked up at the entitlement's scope with
 * `$filter=roleName eq '…'` and remembered for ten minutes, so a burst of grants costs one lookup.
 */
const TTL_MS = 10 * 60_000;
const cache = new Map<string, { id: string; until: number }>();

export function subscriptionOf(scope: string): string {
  return scope.split('/').slice(0, 3).join('/');
}

/** `/subscriptions/<sub>/providers/Microsoft.Authorization/roleDefinitions/<guid>`, the form role assignments take. */
export function roleDefinitionIdFor(scope: string, guid: string): string {
  return `${subscriptionOf(scope)}/providers/Microsoft.Authorization/roleDefinitions/${guid.toLowerCase()}`;
}

/** The GUID at the end of a role definition id, lower-cased (ARM ids compare without case). */
export function roleGuid(roleDefinitionId: string): string {
  return (roleDefinitionId.split('/').pop() ?? '').toLowerCase();
}

export async function resolveRole(arm: Arm, scope: string, role: string, entitlement: string): Promise<string> {
  if (GUID.test(role)) return roleDefinitionIdFor(scope, role);
  if (role.startsWith('/')) return roleDefinitionIdFor(scope, roleGuid(role));
  const key = `${arm.settings.endpoint}|${scope.toLowerCase()}|${role}`;
  const hit = cache.get(key);
  if (hit && hit.until > Date.now()) return hit.id;
  const filter = `roleName eq '${role.replace(/'/g, "''")}'`;
  const found = await arm.all('role definition lookup', 'Microsoft.Authorization/roleDefinitions/read', scope, (options) =>
    arm.client.roleDefinitions.list(sdkScope(scope), { filter, ...options }),
  );
  const matching = found.filter((d) => d.roleName?.toLowerCase() === role.toLowerCase() && typeof d.name === 'string' && GUID.test(d.name));
  if (matching.length !== 1) {
    throw new LapseError(
      'connector_failed',
      matching.length === 0
        ? `azure-rbac target ${arm.target.name}: there is no role named "${role.slice(0, 200)}" at ${scope}`
        : `azure-rbac target ${arm.target.name}: ${matching.length} roles are named "${role.slice(0, 200)}" at ${scope}`,
      {
        where: `targets.${arm.target.name}.entitlements.${entitlement}.settings.role`,
        hint: `give the role definition GUID instead (az role definition list --name "${role.slice(0, 200)}" --scope ${scope} --query "[].name")`,
      },
    );
  }
  const id = roleDefinitionIdFor(scope, matching[0]!.name!);
  cache.set(key, { id, until: Date.now() + TTL_MS });
  return id;
}
