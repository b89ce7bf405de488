import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { NoopCall } from '../../src/connectors/index.js';
import { FakeResourceManager } from '../../src/connectors/gcp-iam/testing/fake-resource-manager.js';

/**
 * Targets for the kill -9 suite (crash-suite.ts): the `crashy` target the crashing Lapse processes
 * provision on, and what the target itself saw, read back in the test process.
 */
export interface CrashTarget {
  /** The `crashy` target's body in lapse.yaml (connector, settings, one entitlement), indented by four spaces. */
  readonly yaml: string;
  /** Environment for the child processes: which extra connectors to build and where their target is (crash-child.ts). */
  readonly env: Readonly<Record<string, string>>;
  /** What happened at the target for one grant, in order: each time its access appeared or went away. */
  effects(grantId: string): ('created' | 'removed')[];
  /** Lapse access still at the target once every grant ended (should be none). */
  leftovers(): string[];
}

export interface CrashTargets {
  readonly name: string;
  /** A fresh target for one crash case, with `dir` to keep files in. */
  open(dir: string): Promise<CrashTarget>;
  close?(): Promise<void>;
}

/** The noop connector, which appends each call and its effect to a file the test reads. */
export const noopCrashTarget: CrashTargets = {
  name: 'noop',
  async open(dir) {
    const callLog = join(dir, 'calls.jsonl');
    const calls = () =>
      existsSync(callLog)
        ? readFileSync(callLog, 'utf8')
            .trim()
            .split('\n')
            .map((line) => JSON.parse(line) as NoopCall)
        : [];
    return {
      yaml: `    connector: noop\n    settings: { callLog: "${callLog}" }\n    entitlements: { readonly: {} }`,
      env: {},
      effects: (grantId) =>
        calls()
          .filter((c) => c.grantId === grantId)
          .flatMap((c) => (c.effect === 'created' || c.effect === 'removed' ? [c.effect] : [])),
      // The noop target's state lives in the killed processes; the effects above account for it.
      leftovers: () => [],
    };
  },
};

/**
 * The gcp-iam connector against a fake Cloud Resource Manager in the test process (one project per
 * case); the children get their tokens from its token endpoint. Effects come from the fake's
 * request log: the writes that added and removed each grant's condition title.
 */
export function gcpCrashTargets(): CrashTargets {
  let fake: FakeResourceManager | undefined;
  let cases = 0;
  return {
    name: 'gcp-iam',
    async open() {
      fake ??= await FakeResourceManager.start();
      const resource = `projects/crash-case-${++cases}`;
      const lapse = `serviceAccount:lapse-${cases}@crash.iam.gserviceaccount.com`;
      fake.addResource(resource, [{ role: 'roles/resourcemanager.projectIamAdmin', members: [lapse] }]);
      const { clientId, secret } = fake.addIdentity(lapse);
      const log = fake;
      return {
        yaml: `    connector: gcp-iam\n    settings: { rootUrl: "${fake.rootUrl}", resource: ${resource} }\n    entitlements: { readonly: { settings: { role: roles/compute.viewer } } }`,
        env: { LAPSE_CRASH_GCP: JSON.stringify({ tokenUrl: `${fake.rootUrl}token`, clientId, secret }) },
        effects: (grantId) =>
          log.calls
            .filter((c) => c.resource === resource && c.method === 'setIamPolicy' && c.status === 200)
            .flatMap((c): ('created' | 'removed')[] => [
              ...(c.added?.includes(`lapse:${grantId}`) ? ['created' as const] : []),
              ...(c.removed?.includes(`lapse:${grantId}`) ? ['removed' as const] : []),
            ]),
        leftovers: () => (log.policy(resource).bindings ?? []).flatMap((b) => (b.condition?.title?.startsWith('lapse:') ? [b.condition.title] : [])),
      };
    },
    close: async () => fake?.close(),
  };
}
