import { randomUUID } from 'node:crypto';

/**
 * What the ARM fake knows: role definitions, the directory's principals, role assignments, and
 * PIM's schedule requests and instances at their scopes, with the rules the real services apply to
 * them (one assignment per principal, role and scope; PIM's policy rules and its five-minute floor
 * before an active assignment can be removed; expiry at `endDateTime`). Pure data and rules; the
 * HTTP side is fake-arm.ts. ARM compares ids without regard to case, so lookups lower-case them.
 */
export interface Assignment {
  readonly name: string;
  readonly scope: string;
  readonly roleDefinitionId: string;
  readonly principalId: string;
  readonly principalType: string;
  readonly description: string | null;
  readonly createdOn: string;
  readonly createdBy: string;
}

export interface ScheduleRequest {
  readonly name: string;
  readonly scope: string;
  readonly properties: Record<string, unknown>;
}

export interface Instance {
  readonly name: string;
  readonly scope: string;
  readonly roleDefinitionId: string;
  readonly principalId: string;
  readonly principalType: string;
  readonly scheduleId: string;
  readonly originRoleAssignmentId: string;
  readonly startDateTime: string;
  endDateTime: string | null;
}

/** The PIM role settings ("role management policy") of one role: what a request must carry. */
export interface PimPolicy {
  readonly maxActiveMs?: number;
  readonly requireJustification?: boolean;
  readonly requireTicket?: boolean;
  readonly requireMfa?: boolean;
}

export class ArmError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export const BUILT_IN_ROLES: Readonly<Record<string, string>> = {
  Owner: '8e3af657-a8ff-443c-a75c-2fe8c4bcb635',
  Contributor: 'b24988ac-6180-42a0-ab88-20f7382dd24c',
  Reader: 'acdd72a7-3385-48ef-bd42-f606fba81ae7',
  'User Access Administrator': '18d7d88d-d35e-4fb5-a5c3-7773c20a72d9',
};

const lower = (s: string) => s.toLowerCase();
const guidOf = (roleDefinitionId: string) => lower(roleDefinitionId.split('/').pop() ?? '');

export class ArmState {
  readonly roles = new Map<string, string>(Object.entries(BUILT_IN_ROLES).map(([name, id]) => [id, name]));
  readonly principals = new Map<string, string>();
  readonly assignments = new Map<string, Assignment>();
  readonly requests = new Map<string, ScheduleRequest>();
  readonly instances = new Map<string, Instance>();
  readonly policies = new Map<string, PimPolicy>();
  /** PIM refuses to remove an active assignment younger than this (five minutes at Azure). */
  minActiveMs = 5 * 60_000;
  /** Added to the wall clock: tests move time forward to pass expiries and the five-minute floor. */
  clockOffsetMs = 0;

  now(): Date {
    return new Date(Date.now() + this.clockOffsetMs);
  }

  addPrincipal(objectId: string, type = 'User'): void {
    this.principals.set(lower(objectId), type);
  }

  roleName(roleDefinitionId: string): string | undefined {
    return this.roles.get(guidOf(roleDefinitionId));
  }

  private checkRoleAndPrincipal(roleDefinitionId: unknown, principalId: unknown, principalType?: unknown): { role: string; type: string } {
    if (typeof roleDefinitionId !== 'string' || !this.roles.has(guidOf(roleDefinitionId)))
      throw new ArmError(400, 'RoleDefinitionDoesNotExist', `The specified role definition with ID '${guidOf(String(roleDefinitionId))}' does not exist.`);
    const type = typeof principalId === 'string' ? this.principals.get(lower(principalId)) : undefined;
    if (!type)
      throw new ArmError(
        400,
        'PrincipalNotFound',
        `Principal ${String(principalId).replace(/-/g, '')} does not exist in the directory. Check that you have the correct principal ID.`,
      );
    if (principalType !== undefined && principalType !== type)
      throw new ArmError(
        400,
        'UnmatchedPrincipalType',
        `The PrincipalId '${String(principalId)}' has type '${type}' , which is different from specified PrincipalType '${String(principalType)}'.`,
      );
    return { role: roleDefinitionId, type };
  }

  private sameAccess(a: { scope: string; roleDefinitionId: string; principalId: string }, scope: string, role: string, principal: string): boolean {
    return lower(a.scope) === lower(scope) && guidOf(a.roleDefinitionId) === guidOf(role) && lower(a.principalId) === lower(principal);
  }

  /** Ends PIM instances whose end has passed, with the role assignments they made. */
  sweep(): void {
    const now = this.now().getTime();
    for (const [key, instance] of this.instances) {
      if (instance.endDateTime !== null && Date.parse(instance.endDateTime) <= now) {
        this.instances.delete(key);
        this.assignments.delete(lower(instance.originRoleAssignmentId));
      }
    }
  }

  createAssignment(scope: string, name: string, body: Record<string, unknown>, caller: string): Assignment {
    if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(name))
      throw new ArmError(400, 'InvalidRoleAssignmentId', `The role assignment ID '${name}' is not valid. The role assignment ID must be a GUID.`);
    const p = (body.properties ?? {}) as Record<string, unknown>;
    const { role, type } = this.checkRoleAndPrincipal(p.roleDefinitionId, p.principalId, p.principalType);
    // NB. Azure answers a repeated identical PUT with 409 too: the create is not idempotent.
    const existing = [...this.assignments.values()].find((a) => lower(a.name) === lower(name) || this.sameAccess(a, scope, role, p.principalId as string));
    if (existing)
      throw new ArmError(
        409,
        'RoleAssignmentExists',
        `The role assignment already exists. The ID of the existing role assignment is ${existing.name.replace(/-/g, '')}.`,
      );
    if (typeof p.description === 'string' && p.description.length > 2048)
      throw new ArmError(400, 'InvalidRoleAssignmentDescription', 'The description is longer than 2048 characters.');
    const assignment: Assignment = {
      name,
      scope,
      roleDefinitionId: role,
      principalId: p.principalId as string,
      principalType: type,
      description: typeof p.description === 'string' ? p.description : null,
      createdOn: this.now().toISOString(),
      createdBy: caller,
    };
    this.assignments.set(lower(`${scope}/providers/Microsoft.Authorization/roleAssignments/${name}`), assignment);
    return assignment;
  }

  findAssignment(scope: string, name: string): Assignment | undefined {
    return this.assignments.get(lower(`${scope}/providers/Microsoft.Authorization/roleAssignments/${name}`));
  }

  /** Removes an assignment and any PIM instance that made it; undefined when there was none. */
  deleteAssignment(scope: string, name: string): Assignment | undefined {
    const id = lower(`${scope}/providers/Microsoft.Authorization/roleAssignments/${name}`);
    const found = this.assignments.get(id);
    if (!found) return undefined;
    this.assignments.delete(id);
    for (const [key, instance] of this.instances) if (lower(instance.originRoleAssignmentId) === id) this.instances.delete(key);
    return found;
  }

  /** PIM: one schedule request, with the outcome the real service gives it. */
  submitRequest(scope: string, name: string, body: Record<string, unknown>, caller: string): ScheduleRequest {
    const key = lower(`${scope}/${name}`);
    if (this.requests.has(key)) throw new ArmError(400, 'RoleAssignmentRequestExists', `A role assignment request with Id: ${name} already exists`);
    const p = { ...((body.properties ?? {}) as Record<string, unknown>) };
    const { role, type } = this.checkRoleAndPrincipal(p.roleDefinitionId, p.principalId);
    const principal = p.principalId as string;
    const active = this.instanceView().find((i) => this.sameAccess(i, scope, role, principal));
    const now = this.now();
    let status = 'Provisioned';
    let scheduleId: string;
    switch (p.requestType) {
      case 'AdminAssign': {
        if (active) throw new ArmError(400, 'RoleAssignmentExists', 'The Role assignment already exists.');
        const end = this.checkPolicy(role, p, now);
        const assignmentName = randomUUID();
        const assignment = this.createAssignment(scope, assignmentName, { properties: { roleDefinitionId: role, principalId: principal } }, caller);
        scheduleId = `${scope}/providers/Microsoft.Authorization/roleAssignmentSchedules/${name}`;
        this.instances.set(lower(`${scope}/${name}`), {
          name: randomUUID(),
          scope,
          roleDefinitionId: role,
          principalId: principal,
          principalType: type,
          scheduleId,
          originRoleAssignmentId: `${assignment.scope}/providers/Microsoft.Authorization/roleAssignments/${assignment.name}`,
          startDateTime: now.toISOString(),
          endDateTime: end,
        });
        break;
      }
      case 'AdminRemove': {
        if (!active) throw new ArmError(400, 'RoleAssignmentDoesNotExist', 'The Role assignment does not exist.');
        if (now.getTime() - Date.parse(active.startDateTime) < this.minActiveMs)
          throw new ArmError(400, 'ActiveDurationTooShort', 'The Active duration is too short. Miniumum Required is 5 minutes.');
        this.deleteAssignment(...splitAssignmentId(active.originRoleAssignmentId));
        scheduleId = active.scheduleId;
        status = 'Revoked';
        break;
      }
      case 'AdminUpdate':
      case 'AdminExtend': {
        if (!active) throw new ArmError(400, 'RoleAssignmentDoesNotExist', 'The Role assignment does not exist.');
        active.endDateTime = this.checkPolicy(role, p, now);
        scheduleId = active.scheduleId;
        break;
      }
      default:
        throw new ArmError(400, 'InvalidRequestType', `The request type '${String(p.requestType)}' is not valid for an admin request.`);
    }
    const request: ScheduleRequest = {
      name,
      scope,
      properties: { ...p, scope, principalType: type, status, targetRoleAssignmentScheduleId: scheduleId, createdOn: now.toISOString(), requestorId: caller },
    };
    this.requests.set(key, request);
    return request;
  }

  /** The role's PIM rules; returns the end the request asks for (null: no expiration). */
  private checkPolicy(role: string, p: Record<string, unknown>, now: Date): string | null {
    const policy = this.policies.get(guidOf(role)) ?? {};
    const schedule = (p.scheduleInfo ?? {}) as { startDateTime?: string; expiration?: { type?: string; endDateTime?: string; duration?: string } };
    const failed: string[] = [];
    const expiration = schedule.expiration ?? {};
    let end: string | null = null;
    if (expiration.type === 'AfterDateTime') {
      if (typeof expiration.endDateTime !== 'string' || Number.isNaN(Date.parse(expiration.endDateTime)))
        throw new ArmError(400, 'InvalidScheduleInfo', 'The schedule info is invalid: endDateTime is required for AfterDateTime.');
      end = new Date(Date.parse(expiration.endDateTime)).toISOString();
    } else if (expiration.type !== 'NoExpiration' && expiration.type !== undefined) {
      throw new ArmError(400, 'InvalidScheduleInfo', `The expiration type '${expiration.type}' is not supported by this fake.`);
    }
    const start = schedule.startDateTime ? Date.parse(schedule.startDateTime) : now.getTime();
    if (policy.maxActiveMs !== undefined && (end === null || Date.parse(end) - start > policy.maxActiveMs)) failed.push('ExpirationRule');
    if (policy.requireJustification && !(typeof p.justification === 'string' && p.justification.trim())) failed.push('JustificationRule');
    const ticket = p.ticketInfo as { ticketNumber?: string; ticketSystem?: string } | undefined;
    if (policy.requireTicket && !(ticket?.ticketNumber && ticket.ticketSystem)) failed.push('TicketingRule');
    if (policy.requireMfa) failed.push('MfaRule');
    if (failed.length > 0)
      throw new ArmError(400, 'RoleAssignmentRequestPolicyValidationFailed', `The following policy rules failed: [${failed.map((f) => `"${f}"`).join(',')}]`);
    return end;
  }

  /**
   * Every active assignment as PIM lists it: its own instances, and role assignments made outside
   * PIM as permanent ones (PIM shows and can remove those too).
   */
  instanceView(): Instance[] {
    const made = new Set([...this.instances.values()].map((i) => lower(i.originRoleAssignmentId)));
    const outside = [...this.assignments.entries()]
      .filter(([id]) => !made.has(id))
      .map(([, a]): Instance => ({
        name: a.name,
        scope: a.scope,
        roleDefinitionId: a.roleDefinitionId,
        principalId: a.principalId,
        principalType: a.principalType,
        scheduleId: `${a.scope}/providers/Microsoft.Authorization/roleAssignmentSchedules/${a.name}`,
        originRoleAssignmentId: `${a.scope}/providers/Microsoft.Authorization/roleAssignments/${a.name}`,
        startDateTime: a.createdOn,
        endDateTime: null,
      }));
    return [...this.instances.values(), ...outside];
  }

  /** What ARM's authorization would decide: does the principal hold the role at the scope (assigned there or above)? */
  hasRole(principalId: string, roleDefinitionId: string, scope: string): boolean {
    this.sweep();
    const s = `${lower(scope)}/`;
    return [...this.assignments.values()].some(
      (a) => lower(a.principalId) === lower(principalId) && guidOf(a.roleDefinitionId) === guidOf(roleDefinitionId) && s.startsWith(`${lower(a.scope)}/`),
    );
  }

  findRequest(scope: string, name: string): ScheduleRequest | undefined {
    return this.requests.get(lower(`${scope}/${name}`));
  }
}

/** `<scope>/providers/Microsoft.Authorization/roleAssignments/<name>` as [scope, name]. */
export function splitAssignmentId(id: string): [string, string] {
  const at = id.toLowerCase().lastIndexOf('/providers/microsoft.authorization/roleassignments/');
  return [id.slice(0, at), id.slice(id.lastIndexOf('/') + 1)];
}
