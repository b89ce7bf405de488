import { describe, expect, it } from 'vitest';
import type { TargetConfig } from '../../config/types.js';
import { newId } from '../../domain/ids.js';
import { assignmentName, grantIdIn, grantNote, updateRequestName, uuidV5 } from './grant-names.js';
import { scopeProblem, targetProblems } from './settings.js';

const SUB = '0b1f6471-1bf0-4dda-aec3-cb9272f09590';
const TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';
const APP = '4d2a8f0e-5c1b-4e7a-9f3d-2b6c8e1a0f57';

function target(
  settings: Record<string, unknown>,
  entitlements: Record<string, Record<string, unknown>> = { reader: { scope: `/subscriptions/${SUB}`, role: 'Reader' } },
): TargetConfig {
  return {
    name: 'az',
    connector: 'azure-rbac',
    description: '',
    labels: {},
    settings: { tenantId: TENANT, clientId: APP, clientSecret: 'secret-value', ...settings },
    entitlements: new Map(Object.entries(entitlements).map(([name, s]) => [name, { name, target: 'az', description: '', settings: s, labels: {} }])),
  };
}

describe('azure-rbac settings', () => {
  it('accepts a plain public-cloud target, a sovereign one and a managed identity', () => {
    expect(targetProblems(target({}))).toEqual([]);
    expect(targetProblems(target({ authorityHost: 'https://login.microsoftonline.us', endpoint: 'https://management.usgovcloudapi.net' }))).toEqual([]);
    expect(targetProblems(target({ clientSecret: undefined, clientId: undefined }))).toEqual([]);
    expect(targetProblems(target({ tenantId: 'contoso.onmicrosoft.com', credential: 'default', clientSecret: undefined }))).toEqual([]);
  });

  it('says what is wrong with the identity, the authority and TLS, and how to fix it', () => {
    expect(
      targetProblems(
        target({
          tenantId: 'not a tenant',
          clientCertificate: '-----BEGIN CERTIFICATE-----',
          endpoint: 'http://management.example.com',
          authorityHost: 'https://adfs.example.com',
          tls: { insecureSkipVerify: true },
          timeoutMs: 10,
          objectIds: { alice: 'alice@example.com' },
          principalType: 'Robot',
          colour: 'blue',
        }),
      ),
    ).toEqual([
      'targets.az.settings.colour: unknown setting; known settings are tenantId, clientId, credential, clientSecret, clientCertificate, authorityHost, disableInstanceDiscovery, endpoint, tls, timeoutMs, objectIds, principalType',
      'targets.az.settings.tenantId: must be the Entra tenant id (a GUID) or its domain, e.g. contoso.onmicrosoft.com',
      'targets.az.settings.clientCertificate: must be a PEM file with the private key and the certificate (up to 64 KiB); write ${file:/etc/lapse/azure-app.pem}',
      'targets.az.settings: give clientSecret or clientCertificate, not both',
      expect.stringMatching(/disableInstanceDiscovery: must be true with authorityHost adfs\.example\.com/),
      'targets.az.settings.endpoint: must be https; Azure SDKs refuse to send tokens over plain http',
      expect.stringMatching(/tls\.insecureSkipVerify: is not supported for Azure .* give the private CA as tls\.ca/),
      'targets.az.settings.timeoutMs: must be a whole number from 1000 to 120000 (milliseconds per request)',
      'targets.az.settings.principalType: must be one of User, Group, ServicePrincipal',
      "targets.az.settings.objectIds.alice: must be the principal's Entra object id, a GUID",
    ]);
    expect(targetProblems(target({ clientSecret: undefined, credential: 'clientSecret' }))).toEqual([
      'targets.az.settings.clientSecret: is required with credential: clientSecret',
    ]);
    expect(targetProblems(target({ clientId: undefined }))).toEqual(['targets.az.settings.clientId: is required with a client secret']);
  });

  it('holds scopes to ARM name rules, since they go into request paths unencoded', () => {
    for (const ok of [
      `/subscriptions/${SUB}`,
      `/subscriptions/${SUB}/resourceGroups/app-rg`,
      `/subscriptions/${SUB}/resourceGroups/rg.(1)/providers/Microsoft.Sql/servers/db1/databases/orders`,
    ])
      expect(scopeProblem(ok)).toBeUndefined();
    for (const bad of [
      `subscriptions/${SUB}`,
      '/subscriptions/not-a-guid',
      `/subscriptions/${SUB}/resourceGroups/../../providers/x`,
      `/subscriptions/${SUB}/resourceGroups/rg?api-version=1`,
      `/subscriptions/${SUB}/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/..`,
      `/subscriptions/${SUB}/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts`,
      `/subscriptions/${SUB}/resourceGroups/rg/extra`,
      `/subscriptions/${SUB}/resourceGroups/rg%2F..`,
      `/subscriptions/${SUB}/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/a b`,
    ])
      expect(scopeProblem(bad), bad).toBeDefined();
    expect(
      targetProblems(
        target(
          {},
          {
            bad: {
              scope: `/subscriptions/${SUB}/resourceGroups/a#b`,
              role: '/providers/Microsoft.Authorization/roleDefinitions/x',
              mode: 'eligible',
              extra: 1,
            },
          },
        ),
      ),
    ).toEqual([
      'targets.az.entitlements.bad.settings.extra: unknown setting; known settings are scope, role, mode',
      expect.stringMatching(/settings\.scope: has a resource group name that is not valid/),
      expect.stringMatching(/settings\.role: a role definition id looks like/),
      expect.stringMatching(/settings\.mode: must be "pim" .* or "assignment"/),
    ]);
  });
});

describe('azure-rbac grant names', () => {
  it('derives version-5 UUIDs: stable per input, different across inputs (RFC 4122 layout)', () => {
    const grantId = newId('grant');
    expect(assignmentName(grantId)).toBe(assignmentName(grantId));
    expect(assignmentName(grantId)).not.toBe(assignmentName(newId('grant')));
    expect(uuidV5('x')).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    const end = new Date('2030-01-01T00:00:00Z');
    expect(updateRequestName(grantId, end)).toBe(updateRequestName(grantId, end));
    expect(updateRequestName(grantId, end)).not.toBe(updateRequestName(grantId, new Date(end.getTime() + 1)));
    expect(() => assignmentName('grt_../../x')).toThrow(/is not a grant id/);
  });

  it('writes the grant id where reconciliation reads it back, and nothing else passes for one', () => {
    const grantId = newId('grant');
    const note = grantNote(grantId, 'az', 'reader', 'ü\nalice');
    expect(note).toBe(`Lapse grant ${grantId}: az/reader for ??alice`);
    expect(grantIdIn(note)).toBe(grantId);
    expect(grantIdIn('made by hand')).toBeNull();
    expect(grantIdIn(undefined)).toBeNull();
    expect(grantIdIn(`xgrt_${'a'.repeat(26)}`)).toBeNull();
  });
});
