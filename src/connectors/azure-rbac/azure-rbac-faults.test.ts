import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { TargetConfig } from '../../config/types.js';
import { newId } from '../../domain/ids.js';
import type { GrantSpec, RevokeResult } from '../types.js';
import { AzureRbacConnector } from './azure-rbac-connector.js';
import { BUILT_IN_ROLES } from './testing/arm-state.js';
import { LAPSE_ACTIONS, startFakeAzure, type FakeAzure } from './testing/fake-azure.js';

/**
 * The azure-rbac connector when Azure misbehaves (throttling, 5xx, reads that lag behind a
 * delete), when Lapse's own identity is wrong or under-privileged, and when TLS is not trusted:
 * revocation still converges, and every failure names what to fix.
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
  az.arm.staleReadsAfterDelete = 0;
  az.arm.throttleEvery = 0;
  az.arm.disallowAll(az.appId);
  az.arm.allow(az.appId, `/subscriptions/${az.subscriptionId}`, LAPSE_ACTIONS);
});

const scope = () => `/subscriptions/${az.subscriptionId}/resourceGroups/app-rg`;

function grantFor(target: TargetConfig): GrantSpec {
  return {
    grantId: newId('grant'),
    principalId: az.addUser(),
    target,
    entitlement: target.entitlements.get('reader')!,
    durationMs: 3_600_000,
    notAfter: new Date(Date.now() + 3_600_000),
    parameters: {},
  };
}

/** What the engine does: call revoke again after an error or while propagation is pending, within a bound. */
async function revokeUntilDone(grant: GrantSpec): Promise<{ calls: number; pending: number; errors: number }> {
  let pending = 0;
  let errors = 0;
  for (let calls = 1; calls <= 20; calls++) {
    let result: RevokeResult | void;
    try {
      result = await connector.revoke(grant, null, s());
    } catch {
      errors++;
      continue;
    }
    if (!result?.propagationPending) return { calls, pending, errors };
    expect(result.recheckInMs).toBeGreaterThan(0);
    pending++;
  }
  throw new Error('revoke did not converge in 20 calls');
}

describe.each(['pim', 'assignment'] as const)('azure-rbac revocation converges (%s)', (mode) => {
  const target = () => az.target({ reader: { role: 'Reader', mode } });

  it('reports propagation pending while ARM still lists the removed assignment, then confirms', async () => {
    const grant = grantFor(target());
    await connector.provision(grant, s());
    az.arm.staleReadsAfterDelete = 3;
    const first = await connector.revoke(grant, null, s());
    expect(first).toMatchObject({ propagationPending: expect.stringMatching(/ARM still lists it/), recheckInMs: 10_000 });
    expect(az.arm.state.hasRole(grant.principalId, READER, scope())).toBe(false);
    const rest = await revokeUntilDone(grant);
    expect(rest.pending).toBeGreaterThanOrEqual(1);
    expect(az.arm.state.hasRole(grant.principalId, READER, scope())).toBe(false);
  });

  it('rides out 429 with Retry-After and 5xx, and keeps going after the SDK gives up', async () => {
    const grant = grantFor(target());
    az.arm.inject({ status: 429, code: 'TooManyRequests', retryAfterMs: 30 }, 2);
    az.arm.inject({ status: 503, code: 'ServiceUnavailable' }, 1);
    const throttledBefore = az.arm.throttled;
    await connector.provision(grant, s());
    expect(az.arm.throttled - throttledBefore).toBe(2);
    // More failures than the SDK retries: revoke fails clearly, and the next call finishes the job.
    az.arm.inject({ status: 500, code: 'InternalServerError', match: (method) => method !== 'PUT' }, 6);
    await expect(connector.revoke(grant, null, s())).rejects.toMatchObject({ code: 'connector_failed', message: expect.stringMatching(/HTTP 500/) });
    az.arm.throttleEvery = 3;
    az.arm.staleReadsAfterDelete = 1;
    const outcome = await revokeUntilDone(grant);
    expect(outcome.calls).toBeGreaterThanOrEqual(1);
    expect(az.arm.state.hasRole(grant.principalId, READER, scope())).toBe(false);
  });
});

describe('azure-rbac target check and identity', () => {
  it('passes with the least-privilege actions and names the first one missing, with the role to assign', async () => {
    const target = az.target({ reader: { role: 'Reader' }, direct: { role: 'Reader', mode: 'assignment' } });
    await connector.checkTarget(target, s());
    az.arm.disallowAll(az.appId);
    az.arm.allow(
      az.appId,
      `/subscriptions/${az.subscriptionId}`,
      LAPSE_ACTIONS.filter((a) => !a.startsWith('Microsoft.Authorization/roleAssignmentScheduleRequests/')),
    );
    const error = await connector.checkTarget(target, s()).catch((e: unknown) => e);
    expect(error).toMatchObject({
      code: 'connector_failed',
      message: expect.stringMatching(
        /lacks Microsoft\.Authorization\/roleAssignmentScheduleRequests\/read at \/subscriptions\/.*\(and Microsoft\.Authorization\/roleAssignmentScheduleRequests\/write\)/,
      ),
      details: {
        customRole: { Name: 'Lapse JIT access broker', Actions: expect.arrayContaining(LAPSE_ACTIONS) },
        hint: expect.stringMatching(/az role assignment create/),
      },
    });
    // Wildcards count, and notActions take away.
    az.arm.disallowAll(az.appId);
    az.arm.allow(az.appId, `/subscriptions/${az.subscriptionId}`, ['Microsoft.Authorization/*'], ['Microsoft.Authorization/roleAssignments/delete']);
    await expect(connector.checkTarget(target, s())).rejects.toThrow(/lacks Microsoft\.Authorization\/roleAssignments\/delete/);
    az.arm.disallowAll(az.appId);
    az.arm.allow(az.appId, `/subscriptions/${az.subscriptionId}`, ['Microsoft.Authorization/*']);
    await connector.checkTarget(target, s());
  });

  it('names the action ARM refused during a revoke', async () => {
    const target = az.target({ reader: { role: 'Reader', mode: 'assignment' } });
    const grant = grantFor(target);
    await connector.provision(grant, s());
    az.arm.disallowAll(az.appId);
    az.arm.allow(az.appId, `/subscriptions/${az.subscriptionId}`, LAPSE_ACTIONS, ['Microsoft.Authorization/roleAssignments/delete']);
    await expect(connector.revoke(grant, null, s())).rejects.toMatchObject({
      message: expect.stringMatching(/may not Microsoft\.Authorization\/roleAssignments\/delete at/),
      details: { missingPermission: 'Microsoft.Authorization/roleAssignments/delete' },
    });
  });

  it('signs in with a certificate too, and without instance discovery', async () => {
    const target = az.target({ reader: { role: 'Reader' } }, { clientSecret: undefined, clientCertificate: az.pki.clientPem });
    const grant = grantFor(target);
    await connector.provision(grant, s());
    await connector.revoke(grant, null, s());
    expect(az.entra.instanceDiscoveryCalls).toBe(0);
  });

  it('fails clearly, without the secret, on a wrong secret, an untrusted server or a wrong tenant', async () => {
    const wrong = `wrong-${crypto.randomUUID()}`;
    const error = await connector.listAccess(az.target(undefined, { clientSecret: wrong }), s()).catch((e: unknown) => e as Error);
    expect(String(error)).toMatch(/could not get a token for https:\/\/127\.0\.0\.1:\d+ from https:\/\/127\.0\.0\.1:\d+: .*AADSTS7000215/);
    expect(JSON.stringify({ message: String(error), details: (error as { details?: unknown }).details })).not.toContain(wrong);
    await expect(connector.listAccess(az.target(undefined, { tls: undefined }), s())).rejects.toMatchObject({
      details: { where: 'targets.azure.settings.authorityHost', hint: expect.stringMatching(/its certificate is trusted \(tls\.ca for a private CA\)/) },
    });
    await expect(connector.listAccess(az.target(undefined, { tenantId: crypto.randomUUID() }), s())).rejects.toMatchObject({
      details: { hint: expect.stringMatching(/check authorityHost and tenantId/) },
    });
  });

  it('says when ARM refuses the token, and a fresh credential recovers', async () => {
    const target = az.target();
    await connector.listAccess(target, s());
    az.entra.revokeAllTokens();
    await expect(connector.listAccess(target, s())).rejects.toThrow(/ARM refused Lapse's token \(InvalidAuthenticationToken/);
    const issued = az.entra.tokensIssued;
    await connector.listAccess(az.target(), s());
    expect(az.entra.tokensIssued).toBe(issued + 1);
  });

  it('gives up at the deadline with connector_timeout', async () => {
    const target = az.target();
    az.arm.inject({ status: 429, code: 'TooManyRequests', retryAfterMs: 5_000 }, 1);
    await expect(connector.listAccess(target, AbortSignal.timeout(300))).rejects.toMatchObject({ code: 'connector_timeout' });
  });
});
