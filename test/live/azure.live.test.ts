import { AuthorizationManagementClient } from '@azure/arm-authorization';
import { ClientSecretCredential } from '@azure/identity';
import { describe, expect, it } from 'vitest';
import type { TargetConfig } from '../../src/config/types.js';
import { AzureRbacConnector } from '../../src/connectors/azure-rbac/index.js';
import type { GrantSpec } from '../../src/connectors/index.js';
import { newId } from '../../src/domain/ids.js';

/**
 * Live smoke test of azure-rbac against a real Azure subscription (`npm run test:live -- azure`).
 * Lapse's identity (an app with the "Lapse JIT access broker" role at the scope) grants Reader at
 * LAPSE_LIVE_AZURE_SCOPE to a second app, the subject; the subject then proves the access by
 * listing role assignments at the scope (Reader allows it, nothing else does), the grant is
 * revoked, and the subject's listing must be refused again. ARM applies and removes role
 * assignments with a delay, so both proofs poll, within bounds.
 */
const env = process.env;
const NEEDED = [
  'LAPSE_LIVE_AZURE_TENANT_ID',
  'LAPSE_LIVE_AZURE_CLIENT_ID',
  'LAPSE_LIVE_AZURE_CLIENT_SECRET',
  'LAPSE_LIVE_AZURE_SCOPE',
  'LAPSE_LIVE_AZURE_SUBJECT_CLIENT_ID',
  'LAPSE_LIVE_AZURE_SUBJECT_CLIENT_SECRET',
  'LAPSE_LIVE_AZURE_SUBJECT_OBJECT_ID',
];
const missing = NEEDED.filter((name) => !env[name]);
const configured = missing.length === 0;
const MODE = env.LAPSE_LIVE_AZURE_MODE === 'assignment' ? 'assignment' : 'pim';

function target(): TargetConfig {
  return {
    name: 'azure-live',
    connector: 'azure-rbac',
    description: '',
    labels: {},
    settings: {
      tenantId: env.LAPSE_LIVE_AZURE_TENANT_ID,
      clientId: env.LAPSE_LIVE_AZURE_CLIENT_ID,
      clientSecret: env.LAPSE_LIVE_AZURE_CLIENT_SECRET,
      principalType: 'ServicePrincipal',
      objectIds: { 'live-subject': env.LAPSE_LIVE_AZURE_SUBJECT_OBJECT_ID },
      ...(env.LAPSE_LIVE_AZURE_AUTHORITY_HOST ? { authorityHost: env.LAPSE_LIVE_AZURE_AUTHORITY_HOST } : {}),
      ...(env.LAPSE_LIVE_AZURE_ENDPOINT ? { endpoint: env.LAPSE_LIVE_AZURE_ENDPOINT } : {}),
    },
    entitlements: new Map([
      [
        'reader',
        { name: 'reader', target: 'azure-live', description: '', labels: {}, settings: { scope: env.LAPSE_LIVE_AZURE_SCOPE, role: 'Reader', mode: MODE } },
      ],
    ]),
  };
}

/** Whether the subject can list role assignments at the scope: Reader there says yes, no role says 403. */
async function subjectCanRead(): Promise<boolean> {
  const credential = new ClientSecretCredential(
    env.LAPSE_LIVE_AZURE_TENANT_ID!,
    env.LAPSE_LIVE_AZURE_SUBJECT_CLIENT_ID!,
    env.LAPSE_LIVE_AZURE_SUBJECT_CLIENT_SECRET!,
  );
  const endpoint = env.LAPSE_LIVE_AZURE_ENDPOINT ?? 'https://management.azure.com';
  const client = new AuthorizationManagementClient(credential, '00000000-0000-0000-0000-000000000000', { $host: endpoint, endpoint });
  try {
    for await (const page of client.roleAssignments.listForScope(env.LAPSE_LIVE_AZURE_SCOPE!.replace(/^\//, ''), { filter: 'atScope()' }).byPage()) {
      void page;
      return true;
    }
    return true;
  } catch (error) {
    if ((error as { statusCode?: number }).statusCode === 403) return false;
    throw error;
  }
}

async function until(what: string, check: () => Promise<boolean>, boundMs: number): Promise<number> {
  const started = Date.now();
  while (Date.now() - started < boundMs) {
    if (await check()) return Date.now() - started;
    await new Promise((resolve) => setTimeout(resolve, 10_000));
  }
  throw new Error(`${what}: not within ${boundMs / 1000} s`);
}

describe.skipIf(!configured)(`azure-rbac live (${MODE})`, () => {
  it('grants Reader that works, and revokes it so it stops working', async () => {
    const connector = new AzureRbacConnector();
    const t = target();
    expect(connector.validateSettings(t)).toEqual([]);
    await connector.checkTarget(t, AbortSignal.timeout(60_000));
    expect(await subjectCanRead()).toBe(false);
    const grant: GrantSpec = {
      grantId: newId('grant'),
      principalId: 'live-subject',
      target: t,
      entitlement: t.entitlements.get('reader')!,
      durationMs: 30 * 60_000,
      notAfter: new Date(Date.now() + 31 * 60_000),
      parameters: {},
    };
    const { handle } = await connector.provision(grant, AbortSignal.timeout(60_000));
    try {
      await until('the grant to take effect', subjectCanRead, 300_000);
      expect((await connector.listAccess(t, AbortSignal.timeout(60_000))).some((a) => a.grantId === grant.grantId)).toBe(true);
    } finally {
      await until('the revoke to be confirmed', async () => !(await connector.revoke(grant, handle, AbortSignal.timeout(60_000)))?.propagationPending, 240_000);
    }
    await until('the access to stop', async () => !(await subjectCanRead()), 240_000);
  });
});

describe.skipIf(configured)('azure-rbac live', () => {
  it.skip(`needs ${missing.join(', ')} (see docs/connectors/azure-rbac.md, "Live smoke test")`, () => {});
});
