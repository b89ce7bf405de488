import type { TargetConfig } from '../../config/types.js';
import { LapseError } from '../../domain/errors.js';
import { Arm, sdkScope } from './arm-client.js';
import { resolveRole } from './role-definitions.js';
import { parseEntitlement, parseTarget } from './settings.js';

/**
 * `lapse target check` for azure-rbac: signs in, reads Lapse's own permissions at every
 * entitlement's scope (`GET <scope>/providers/Microsoft.Authorization/permissions`), names the first
 * action it lacks together with the least-privilege custom role to assign, then resolves every
 * role and, for PIM entitlements, lists the scope's PIM assignments (proving PIM answers there).
 */
const COMMON = [
  'Microsoft.Authorization/roleAssignments/read',
  'Microsoft.Authorization/roleAssignments/delete',
  'Microsoft.Authorization/roleDefinitions/read',
  'Microsoft.Authorization/permissions/read',
];
const FOR_MODE: Readonly<Record<'pim' | 'assignment', readonly string[]>> = {
  assignment: ['Microsoft.Authorization/roleAssignments/write'],
  // NB. roleAssignments/delete stays in COMMON for PIM too: it is the fallback when PIM refuses a
  // removal in an assignment's first five minutes.
  pim: [
    'Microsoft.Authorization/roleAssignments/write',
    'Microsoft.Authorization/roleAssignmentScheduleRequests/read',
    'Microsoft.Authorization/roleAssignmentScheduleRequests/write',
    'Microsoft.Authorization/roleAssignmentScheduleInstances/read',
  ],
};

/** Every action Lapse may use, as the custom role docs/connectors/azure-rbac.md shows. */
export const LAPSE_ROLE_ACTIONS = [...new Set([...COMMON, ...FOR_MODE.assignment, ...FOR_MODE.pim])].sort();

export function customRole(assignableScopes: readonly string[]): Record<string, unknown> {
  return {
    Name: 'Lapse JIT access broker',
    IsCustom: true,
    Description: 'Lets Lapse create and remove time-bound role assignments (plain and PIM) and read what exists, for just-in-time access.',
    Actions: LAPSE_ROLE_ACTIONS,
    NotActions: [],
    DataActions: [],
    NotDataActions: [],
    AssignableScopes: assignableScopes,
  };
}

interface PermissionSet {
  readonly actions?: readonly string[];
  readonly notActions?: readonly string[];
}

/** ARM's wildcard: `*` matches any run of characters, without regard to case. */
function matches(pattern: string, action: string): boolean {
  const source = pattern
    .split('*')
    .map((part) => part.replace(/[.+?^${}()|[\]\\/]/g, '\\$&'))
    .join('.*');
  return new RegExp(`^${source}$`, 'i').test(action);
}

/** Whether any one permission set allows the action (its actions match and its notActions do not). */
export function allows(permissions: readonly PermissionSet[], action: string): boolean {
  return permissions.some((p) => (p.actions ?? []).some((a) => matches(a, action)) && !(p.notActions ?? []).some((a) => matches(a, action)));
}

export async function checkTarget(target: TargetConfig, signal: AbortSignal): Promise<void> {
  const settings = parseTarget(target);
  const arm = new Arm(target, settings, signal);
  const needs = new Map<string, Set<string>>();
  for (const entitlement of target.entitlements.values()) {
    const { scope, mode } = parseEntitlement(entitlement);
    const set = needs.get(scope) ?? new Set<string>();
    for (const action of [...COMMON, ...FOR_MODE[mode]]) set.add(action);
    needs.set(scope, set);
  }
  for (const [scope, actions] of needs) {
    const body = (await arm.getJson(
      "reading Lapse's permissions",
      'Microsoft.Authorization/permissions/read',
      scope,
      `${scope}/providers/Microsoft.Authorization/permissions?api-version=2022-04-01`,
    )) as {
      value?: PermissionSet[];
    };
    const missing = [...actions].filter((action) => !allows(body.value ?? [], action));
    if (missing.length > 0) {
      const role = customRole([scope.split('/').slice(0, 3).join('/')]);
      throw new LapseError(
        'connector_failed',
        `azure-rbac target ${target.name}: Lapse's identity lacks ${missing[0]} at ${scope}${missing.length > 1 ? ` (and ${missing.slice(1).join(', ')})` : ''}`,
        {
          where: `targets.${target.name}.settings.clientId`,
          missingPermissions: missing,
          customRole: role,
          hint: `create the custom role in docs/connectors/azure-rbac.md (az role definition create --role-definition lapse-role.json) and assign it to Lapse's identity at ${scope}: az role assignment create --assignee <clientId> --role "Lapse JIT access broker" --scope ${scope}`,
        },
      );
    }
  }
  for (const entitlement of target.entitlements.values()) {
    const { scope, role, mode } = parseEntitlement(entitlement);
    await resolveRole(arm, scope, role, entitlement.name);
    if (mode === 'pim') {
      await arm.call(
        'listing PIM assignments (is PIM available at this scope?)',
        'Microsoft.Authorization/roleAssignmentScheduleInstances/read',
        scope,
        async (options) => {
          const pages = arm.client.roleAssignmentScheduleInstances.listForScope(sdkScope(scope), { filter: 'atScope()', ...options }).byPage();
          await pages.next();
        },
      );
    }
  }
}
