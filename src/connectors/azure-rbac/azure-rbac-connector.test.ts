import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { TargetConfig } from '../../config/types.js';
import { newId } from '../../domain/ids.js';
import { connectorConformance } from '../testing/conformance.js';
import type { GrantSpec } from '../types.js';
import { AzureRbacConnector } from './azure-rbac-connector.js';
import { assignmentName, uuidV5 } from './grant-names.js';
import { BUILT_IN_ROLES } from './testing/arm-state.js';
import { startFakeAzure, type FakeAzure } from './testing/fake-azure.js';

/**
 * The azure-rbac connector through the real `@azure/identity` and `@azure/arm-authorization`
 * SDKs, against the local HTTPS fakes of Entra ID and ARM (testing/): what it sends, how it
 * recognises its own assignments, and how PIM's rules shape provision and revoke.
 */
const connector = new AzureRbacConnector();
let az: FakeAzure;
const READER = BUILT_IN_ROLES.Reader!;
const s = () => AbortSignal.timeout(20_000);

beforeAll(async () => {
  az = await startFakeAzure();
});
afterAll(async () => {
  await az?.close();
});
beforeEach(() => {
  az.arm.state.clockOffsetMs = 0;
  az.arm.staleReadsAfterDelete = 0;
  az.arm.pageSize = 100;
  az.arm.state.policies.clear();
});

const scope = () => `/subscriptions/${az.subscriptionId}/resourceGroups/app-rg`;

function grantFor(target: TargetConfig, entitlement = 'reader', overrides: Partial<GrantSpec> = {}): GrantSpec {
  return {
    grantId: newId('grant'),
    principalId: az.addUser(),
    target,
    entitlement: target.entitlements.get(entitlement)!,
    durationMs: 3_600_000,
    notAfter: new Date(Date.now() + 3_600_000),
    parameters: {},
    ...overrides,
  };
}

for (const mode of ['pim', 'assignment'] as const) {
  const target = () => az.target({ reader: { role: 'Reader', mode } });
  connectorConformance({
    name: `azure-rbac (${mode})`,
    connector: () => connector,
    grant: (overrides) => grantFor(target(), 'reader', overrides),
    hasAccess: async (grant) => az.arm.state.hasRole(grant.principalId, READER, scope()),
    createUnmanaged: async () => {
      const objectId = az.addUser();
      az.arm.state.createAssignment(
        scope(),
        crypto.randomUUID(),
        {
          properties: {
            roleDefinitionId: `/subscriptions/${az.subscriptionId}/providers/Microsoft.Authorization/roleDefinitions/${READER}`,
            principalId: objectId,
          },
        },
        'someone',
      );
      return objectId;
    },
  });
}

describe('azure-rbac with PIM', () => {
  it('sends one AdminAssign named from the grant, ending at the grant, carrying the grant id', async () => {
    const target = az.target();
    const grant = grantFor(target);
    const { handle } = await connector.provision(grant, s());
    const name = assignmentName(grant.grantId);
    expect(name).toBe(uuidV5(grant.grantId));
    expect(name).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    const request = az.arm.state.findRequest(scope(), name)!;
    expect(request.properties).toMatchObject({
      requestType: 'AdminAssign',
      principalId: grant.principalId,
      roleDefinitionId: `/subscriptions/${az.subscriptionId}/providers/Microsoft.Authorization/roleDefinitions/${READER}`,
      scheduleInfo: { expiration: { type: 'AfterDateTime', endDateTime: grant.notAfter.toISOString() } },
      ticketInfo: { ticketSystem: 'Lapse', ticketNumber: grant.grantId },
      justification: expect.stringContaining(grant.grantId),
      status: 'Provisioned',
    });
    expect(handle).toEqual({ mode: 'pim', scope: scope(), roleDefinitionId: request.properties.roleDefinitionId, objectId: grant.principalId, name });
    expect(az.arm.log.filter((l) => l.startsWith('PUT')).at(-1)).toBe(
      `PUT ${scope()}/providers/Microsoft.Authorization/roleAssignmentScheduleRequests/${name}`,
    );
    // A repeated provision (after a crash) finds its request and sends nothing new.
    const puts = az.arm.log.filter((l) => l.startsWith('PUT')).length;
    expect((await connector.provision(grant, s())).handle).toEqual(handle);
    expect(az.arm.log.filter((l) => l.startsWith('PUT')).length).toBe(puts);
    expect(az.entra.instanceDiscoveryCalls).toBe(0);
  });

  it('revokes with AdminRemove once five minutes have passed, and by deleting the role assignment before that', async () => {
    const target = az.target();
    const late = grantFor(target);
    const early = grantFor(target);
    await connector.provision(late, s());
    const provisioned = await connector.provision(early, s());
    await connector.revoke(early, provisioned.handle, s());
    expect(az.arm.state.hasRole(early.principalId, READER, scope())).toBe(false);
    expect(az.arm.log.some((l) => l.startsWith('DELETE') && l.includes('/roleAssignments/'))).toBe(true);

    az.arm.log.length = 0;
    az.arm.state.clockOffsetMs = 6 * 60_000;
    await connector.revoke(late, null, s());
    expect(az.arm.state.hasRole(late.principalId, READER, scope())).toBe(false);
    expect(az.arm.log.some((l) => l.startsWith('DELETE'))).toBe(false);
    const removal = [...az.arm.state.requests.values()].find(
      (r) => r.properties.requestType === 'AdminRemove' && r.properties.principalId === late.principalId,
    );
    expect(removal?.properties).toMatchObject({ status: 'Revoked', ticketInfo: { ticketSystem: 'Lapse', ticketNumber: late.grantId } });
  });

  it('leaves the end to Azure as a backstop: the assignment is gone after it', async () => {
    const grant = grantFor(az.target(), 'reader', { notAfter: new Date(Date.now() + 120_000) });
    await connector.provision(grant, s());
    expect(az.arm.state.hasRole(grant.principalId, READER, scope())).toBe(true);
    az.arm.state.clockOffsetMs = 121_000;
    expect(az.arm.state.hasRole(grant.principalId, READER, scope())).toBe(false);
    await connector.revoke(grant, null, s());
  });

  it('extends with AdminUpdate to the later end, never earlier', async () => {
    const grant = grantFor(az.target());
    const { handle } = await connector.provision(grant, s());
    const later = new Date(grant.notAfter.getTime() + 3_600_000);
    await connector.extend!({ ...grant, notAfter: later }, handle, s());
    await connector.extend!({ ...grant, notAfter: later }, handle, s());
    const instance = az.arm.state.instanceView().find((i) => i.principalId === grant.principalId)!;
    expect(instance.endDateTime).toBe(later.toISOString());
    const updates = [...az.arm.state.requests.values()].filter(
      (r) => r.properties.requestType === 'AdminUpdate' && r.properties.principalId === grant.principalId,
    );
    expect(updates).toHaveLength(1);
    await connector.extend!({ ...grant, notAfter: grant.notAfter }, handle, s());
    expect(az.arm.state.instanceView().find((i) => i.principalId === grant.principalId)!.endDateTime).toBe(later.toISOString());
    await connector.revoke(grant, handle, s());
  });

  it('shares one assignment between grants of the same access, moving its end to cover both', async () => {
    const target = az.target();
    const first = grantFor(target);
    const second = grantFor(target, 'reader', { principalId: first.principalId, notAfter: new Date(first.notAfter.getTime() + 600_000) });
    expect(connector.accessKey(first)).toBe(connector.accessKey(second));
    await connector.provision(first, s());
    const shared = await connector.provision(second, s());
    expect(shared.handle).toMatchObject({ sharedWith: first.grantId });
    expect(az.arm.state.instanceView().find((i) => i.principalId === first.principalId)!.endDateTime).toBe(second.notAfter.toISOString());
    const listed = await connector.listAccess(target, s());
    expect(listed.filter((a) => a.principalId === first.principalId)).toEqual([expect.objectContaining({ grantId: first.grantId, entitlement: 'reader' })]);
    // The engine revokes only when the last grant of the access ends; that revoke removes it.
    await connector.revoke(second, shared.handle, s());
    expect(az.arm.state.hasRole(first.principalId, READER, scope())).toBe(false);
  });

  it('refuses to take over a standing assignment, and revoke leaves it alone', async () => {
    const target = az.target();
    const grant = grantFor(target);
    az.arm.state.createAssignment(scope(), crypto.randomUUID(), { properties: { roleDefinitionId: READER, principalId: grant.principalId } }, 'an admin');
    await expect(connector.provision(grant, s())).rejects.toMatchObject({
      code: 'conflict',
      message: expect.stringMatching(/through an assignment Lapse did not make/),
    });
    await connector.revoke(grant, null, s());
    expect(az.arm.state.hasRole(grant.principalId, READER, scope())).toBe(true);
    const assignment = grantFor(az.target({ reader: { role: 'Reader', mode: 'assignment' } }), 'reader', { principalId: grant.principalId });
    await expect(connector.provision(assignment, s())).rejects.toMatchObject({ code: 'conflict' });
  });

  it('explains which PIM rule refused the request and what to change', async () => {
    az.arm.state.policies.set(READER, { requireMfa: true });
    await expect(connector.provision(grantFor(az.target()), s())).rejects.toMatchObject({
      code: 'connector_failed',
      message: expect.stringMatching(/PIM settings of the role .* refused the request \(RoleAssignmentRequestPolicyValidationFailed/),
      details: { failedRules: ['MfaRule'], hint: expect.stringMatching(/Require Azure Multi-Factor Authentication on active assignment/) },
    });
    az.arm.state.policies.set(READER, { maxActiveMs: 30 * 60_000, requireJustification: true, requireTicket: true });
    await expect(connector.provision(grantFor(az.target()), s())).rejects.toMatchObject({
      details: { failedRules: ['ExpirationRule'], hint: expect.stringMatching(/maximum active assignment duration/) },
    });
    const short = grantFor(az.target(), 'reader', { notAfter: new Date(Date.now() + 20 * 60_000) });
    await connector.provision(short, s());
    await connector.revoke(short, null, s());
  });
});

describe('azure-rbac principals, roles and scopes', () => {
  it('maps principal ids to object ids, and names the missing mapping', async () => {
    const target = az.target();
    const grant = grantFor(target, 'reader', { principalId: 'alice@example.com' });
    await connector.provision(grant, s());
    expect(az.arm.state.hasRole(az.users['alice@example.com']!, READER, scope())).toBe(true);
    expect(await connector.listAccess(target, s())).toContainEqual(expect.objectContaining({ principalId: 'alice@example.com', grantId: grant.grantId }));
    await connector.revoke(grant, null, s());
    expect(() => connector.accessKey(grantFor(target, 'reader', { principalId: 'mallory@example.com' }))).toThrow(
      /principal "mallory@example.com" has no Entra object id/,
    );
  });

  it('takes a role by name, by GUID or by id, and says when a name matches nothing', async () => {
    const target = az.target({
      byGuid: { role: BUILT_IN_ROLES.Contributor },
      byId: { role: `/subscriptions/${az.subscriptionId}/providers/Microsoft.Authorization/roleDefinitions/${BUILT_IN_ROLES.Contributor}`, mode: 'assignment' },
      missing: { role: "Nobody's Role" },
    });
    for (const name of ['byGuid', 'byId']) {
      const grant = grantFor(target, name);
      await connector.provision(grant, s());
      expect(az.arm.state.hasRole(grant.principalId, BUILT_IN_ROLES.Contributor!, scope())).toBe(true);
      await connector.revoke(grant, null, s());
    }
    await expect(connector.provision(grantFor(target, 'missing'), s())).rejects.toThrow(/there is no role named "Nobody's Role"/);
  });

  it('assigns at a resource scope and pages through long listings', async () => {
    const resource = `${scope()}/providers/Microsoft.Storage/storageAccounts/logs01`;
    const target = az.target({ blob: { role: 'Reader', scope: resource } });
    az.arm.pageSize = 2;
    const grants = Array.from({ length: 5 }, () => grantFor(target, 'blob'));
    for (const g of grants) await connector.provision(g, s());
    const listed = await connector.listAccess(target, s());
    for (const g of grants) expect(listed).toContainEqual(expect.objectContaining({ grantId: g.grantId, principalId: g.principalId }));
    expect(az.arm.log.some((l) => l.includes('roleAssignmentScheduleInstances'))).toBe(true);
    for (const g of grants) await connector.revoke(g, null, s());
    expect(grants.some((g) => az.arm.state.hasRole(g.principalId, READER, resource))).toBe(false);
  });
});
