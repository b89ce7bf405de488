import type { TargetConfig } from '../../../config/types.js';
import { AwsFake } from '../../aws/testing/aws-fake.js';
import { IdentityCenterModel } from './identity-center-model.js';

export { IdentityCenterModel, MAX_INLINE_POLICY, type FakeUser } from './identity-center-model.js';
export { denies } from './constraints.js';

/** A running fake Identity Center (see identity-center-model.ts) and a target pointing at it. */
export interface IdentityCenterFake {
  readonly fake: AwsFake;
  readonly model: IdentityCenterModel;
  readonly endpoint: string;
  readonly credentials: { readonly accessKeyId: string; readonly secretAccessKey: string };
  /** A target on the fake; entitlements by name → settings; `settings` adds to or overrides the target's. */
  target(name: string, entitlements: Record<string, Record<string, unknown>>, settings?: Record<string, unknown>): TargetConfig;
  close(): Promise<void>;
}

export async function openIdentityCenterFake(region = 'eu-west-1'): Promise<IdentityCenterFake> {
  const fake = new AwsFake(region);
  const credentials = { accessKeyId: 'AKIAFAKEIDENTITYCTR1', secretAccessKey: 'fake-secret-for-identity-center-tests-0' };
  fake.addKey(credentials.accessKeyId, credentials.secretAccessKey, 'arn:aws:sts::111122223333:assumed-role/lapse/lapse');
  const model = new IdentityCenterModel();
  model.register(fake);
  const endpoint = await fake.listen();
  return {
    fake,
    model,
    endpoint,
    credentials,
    target(name, entitlements, settings = {}) {
      return {
        name,
        connector: 'aws-identity-center',
        description: '',
        settings: {
          region,
          credentials,
          endpoints: { sso: endpoint, identitystore: endpoint },
          maxAttempts: 3,
          timeoutMs: 5_000,
          instanceArn: model.instanceArn,
          identityStoreId: model.identityStoreId,
          pollIntervalMs: 10,
          ...settings,
        },
        labels: {},
        entitlements: new Map(
          Object.entries(entitlements).map(([entitlement, s]) => [entitlement, { name: entitlement, target: name, description: '', settings: s, labels: {} }]),
        ),
      };
    },
    close: () => fake.close(),
  };
}
