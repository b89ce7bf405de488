import { randomBytes, randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { EntitlementConfig, TargetConfig } from '../../../config/types.js';
import { FakeArm } from './fake-arm.js';
import { FakeEntra } from './fake-entra.js';
import { makeTestPki, type TestPki } from './test-ca.js';

/**
 * The fake Entra token service and the fake ARM, each on its own HTTPS port of 127.0.0.1 with a
 * certificate from a throw-away CA, plus one subscription, Lapse's app registration (a client
 * secret and a certificate) allowed the least-privilege actions docs/connectors/azure-rbac.md
 * lists, and a few users in the directory. `target()` builds a `azure-rbac` target pointing at it.
 */
export const LAPSE_ACTIONS = [
  'Microsoft.Authorization/roleAssignments/read',
  'Microsoft.Authorization/roleAssignments/write',
  'Microsoft.Authorization/roleAssignments/delete',
  'Microsoft.Authorization/roleDefinitions/read',
  'Microsoft.Authorization/roleAssignmentScheduleRequests/read',
  'Microsoft.Authorization/roleAssignmentScheduleRequests/write',
  'Microsoft.Authorization/roleAssignmentScheduleInstances/read',
  'Microsoft.Authorization/permissions/read',
];

export interface FakeAzure {
  readonly pki: TestPki;
  readonly entra: FakeEntra;
  readonly arm: FakeArm;
  readonly tenantId: string;
  readonly subscriptionId: string;
  readonly appId: string;
  readonly secret: string;
  readonly authorityHost: string;
  readonly endpoint: string;
  /** Users in the directory, by the principal id Lapse knows them by. */
  readonly users: Readonly<Record<string, string>>;
  /** A new user in the directory; returns its object id. */
  addUser(): string;
  target(entitlements?: Record<string, Record<string, unknown>>, settings?: Record<string, unknown>, name?: string): TargetConfig;
  close(): Promise<void>;
}

export async function startFakeAzure(pki: TestPki = makeTestPki()): Promise<FakeAzure> {
  const tenantId = randomUUID();
  const subscriptionId = randomUUID();
  const appId = randomUUID();
  const secret = randomBytes(24).toString('base64url');
  const entra = new FakeEntra(tenantId);
  const arm = new FakeArm(entra);
  entra.registerApp(appId, { secret, certificatePem: pki.clientCertPem });
  arm.subscriptions.add(subscriptionId);
  arm.allow(appId, `/subscriptions/${subscriptionId}`, LAPSE_ACTIONS);

  const tls = { key: pki.serverKeyPem, cert: pki.serverCertPem };
  const entraServer = createServer(tls, (req, res) => void entra.handle(req, res));
  const armServer = createServer(tls, (req, res) => void arm.handle(req, res));
  const listen = async (server: Server) => {
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  };
  const authorityHost = await listen(entraServer);
  const endpoint = await listen(armServer);
  entra.setBaseUrl(authorityHost);
  arm.setBaseUrl(endpoint);

  const users: Record<string, string> = {};
  for (const name of ['alice@example.com', 'bob@example.com', 'carol@example.com']) {
    users[name] = randomUUID();
    arm.state.addPrincipal(users[name]);
  }

  return {
    pki,
    entra,
    arm,
    tenantId,
    subscriptionId,
    appId,
    secret,
    authorityHost,
    endpoint,
    users,
    addUser() {
      const id = randomUUID();
      arm.state.addPrincipal(id);
      return id;
    },
    target(entitlements = { reader: { role: 'Reader' } }, settings = {}, name = 'azure') {
      const map = new Map<string, EntitlementConfig>(
        Object.entries(entitlements).map(([e, s]) => [
          e,
          { name: e, target: name, description: '', settings: { scope: `/subscriptions/${subscriptionId}/resourceGroups/app-rg`, ...s }, labels: {} },
        ]),
      );
      return {
        name,
        connector: 'azure-rbac',
        description: '',
        labels: {},
        entitlements: map,
        settings: {
          tenantId,
          clientId: appId,
          clientSecret: secret,
          authorityHost,
          disableInstanceDiscovery: true,
          endpoint,
          tls: { ca: pki.caPem },
          objectIds: users,
          ...settings,
        },
      };
    },
    async close() {
      for (const server of [entraServer, armServer]) {
        server.closeAllConnections();
        server.close();
      }
    },
  };
}
