import { randomBytes } from 'node:crypto';
import type { EntitlementConfig, TargetConfig } from '../../../config/types.js';
import { newId } from '../../../domain/ids.js';
import type { GrantSpec } from '../../types.js';
import { GcpCredentials } from '../credentials.js';
import { GcpIamConnector } from '../gcp-iam-connector.js';
import { ResourceManager } from '../resource-manager.js';
import { parseTarget } from '../settings.js';
import { FakeResourceManager } from './fake-resource-manager.js';

/**
 * A ready fake GCP for tests and the bench: a project `projects/acme-prod` and a folder
 * `folders/1234` in a FakeResourceManager, Lapse's service account holding the IAM-admin role on
 * each (as docs/connectors/gcp-iam.md says), and a connector that gets its tokens from the fake.
 */
export const LAPSE_MEMBER = 'serviceAccount:lapse@acme-admin.iam.gserviceaccount.com';
export const PROJECT = 'projects/acme-prod';
export const FOLDER = 'folders/1234';
/** The permission the `viewer` entitlement's role (roles/compute.viewer) grants, as a requester would use it. */
export const VIEWER_PERMISSION = 'compute.instances.list';

export interface FakeProject {
  readonly fake: FakeResourceManager;
  readonly connector: GcpIamConnector;
  /** A target on the fake: entitlement `viewer` (roles/compute.viewer on the project) and `bq` (roles/bigquery.dataViewer on the folder). */
  target(name?: string, settings?: Record<string, unknown>, entitlements?: Record<string, Record<string, unknown>>): TargetConfig;
  /** A grant for a fresh principal (`user:<principal>` can get tokens from the fake). */
  grant(overrides?: Partial<GrantSpec>): GrantSpec;
  /** Asks the fake, as the grant's principal with its own token, whether it holds the entitlement's permission now. */
  hasAccess(grant: GrantSpec, resource?: string, permission?: string): Promise<boolean>;
  close(): Promise<void>;
}

export async function openFakeProject(): Promise<FakeProject> {
  const fake = await FakeResourceManager.start();
  fake.addResource(PROJECT, [{ role: 'roles/resourcemanager.projectIamAdmin', members: [LAPSE_MEMBER] }]);
  fake.addResource(FOLDER, [{ role: 'roles/resourcemanager.folderIamAdmin', members: [LAPSE_MEMBER] }]);
  fake.addIdentity(LAPSE_MEMBER);
  const connector = new GcpIamConnector({ tokenSource: fake.tokenSource(LAPSE_MEMBER) });

  const target: FakeProject['target'] = (name = 'gcp', settings = {}, entitlements) => {
    const specs = entitlements ?? { viewer: { role: 'roles/compute.viewer' }, bq: { role: 'roles/bigquery.dataViewer', resource: FOLDER } };
    const map = new Map<string, EntitlementConfig>(
      Object.entries(specs).map(([e, s]) => [e, { name: e, target: name, description: '', settings: s, labels: {} }]),
    );
    return { name, connector: 'gcp-iam', description: '', settings: { rootUrl: fake.rootUrl, resource: PROJECT, ...settings }, labels: {}, entitlements: map };
  };

  const grant: FakeProject['grant'] = (overrides = {}) => {
    const t = overrides.target ?? target();
    const principalId = overrides.principalId ?? `dev-${randomBytes(4).toString('hex')}@example.com`;
    if (!overrides.principalId) fake.addIdentity(`user:${principalId}`);
    return {
      grantId: newId('grant'),
      principalId,
      target: t,
      entitlement: t.entitlements.get('viewer') ?? [...t.entitlements.values()][0]!,
      durationMs: 3_600_000,
      notAfter: new Date(Date.now() + 3_600_000),
      parameters: {},
      ...overrides,
    };
  };

  const hasAccess: FakeProject['hasAccess'] = async (g, resource = PROJECT, permission = VIEWER_PERMISSION) => {
    const member = `user:${g.principalId}`;
    const probe = target('probe');
    const api = new ResourceManager('probe', () => new GcpCredentials(fake.tokenSource(member)).for(probe, parseTarget(probe)), fake.rootUrl, 5_000);
    return (await api.testPermissions(resource, [permission], AbortSignal.timeout(10_000))).includes(permission);
  };

  return { fake, connector, target, grant, hasAccess, close: () => fake.close() };
}
