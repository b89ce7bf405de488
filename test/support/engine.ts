import { parseConfig } from '../../src/config/index.js';
import { connectorRegistry, NoopConnector } from '../../src/connectors/index.js';
import { Engine } from '../../src/engine/index.js';
import type { Store } from '../../src/store/index.js';

/** The cast of the tests: alice asks, bob leads, carol is security, root is admin. */
export const alice = { id: 'alice', kind: 'user' as const, groups: ['sre', 'oncall'] };
export const bob = { id: 'bob', kind: 'user' as const, groups: ['sre-leads'] };
export const carol = { id: 'carol', kind: 'user' as const, groups: ['security'] };
export const mallory = { id: 'mallory', kind: 'user' as const, groups: ['contractors'] };
export const root = { id: 'root', kind: 'user' as const, groups: ['admins'] };

/** A small config exercising every path: auto-approval, two approval stages, break-glass. */
export const TEST_CONFIG = `
version: 1
roles:
  admins: { groups: [admins] }
  auditors: { users: [auditor] }
targets:
  prod-db:
    connector: noop
    entitlements:
      readonly: { description: read only }
      admin: { description: full control }
      ephemeral: { description: a throw-away account, settings: { issueCredentials: true } }
  flaky:
    connector: noop
    entitlements:
      readonly: {}
policies:
  - name: sre-readonly
    subjects: { groups: [sre] }
    entitlements: ["prod-db/readonly", "prod-db/ephemeral", "flaky/readonly"]
    duration: { default: 1h, max: 8h }
    extension: { maxCount: 2, maxTotal: 12h, requireApproval: false }
    autoApprove: true
  - name: sre-admin
    subjects: { groups: [sre] }
    entitlements: ["prod-db/admin"]
    duration: { default: 1h, max: 4h }
    require: { justification: { minLength: 10 }, ticket: { pattern: "^OPS-[0-9]+$" } }
    approval:
      pendingTimeout: 1h
      stages:
        - { name: leads, approvers: { groups: [sre-leads] }, quorum: 1 }
        - { name: security, approvers: { groups: [security] }, quorum: 1 }
breakGlass:
  enabled: true
  subjects: { groups: [oncall] }
  entitlements: ["prod-db/*"]
  maxDuration: 1h
  minReasonLength: 20
scheduler:
  pollInterval: 200ms
  connectorTimeout: 2s
  provisionAttempts: 3
  revokeBackoff: { min: 20ms, max: 200ms }
`;

export interface TestEngine {
  readonly engine: Engine;
  readonly noop: NoopConnector;
  stop(): Promise<void>;
}

export async function startEngine(store: Store, options: { yaml?: string; noop?: NoopConnector; start?: boolean } = {}): Promise<TestEngine> {
  const noop = options.noop ?? new NoopConnector();
  const engine = new Engine({
    store,
    config: parseConfig(options.yaml ?? TEST_CONFIG, 'test.yaml', {}),
    connectors: connectorRegistry([noop]),
  });
  if (options.start !== false) await engine.start();
  return { engine, noop, stop: () => engine.stop() };
}

/** Polls until `check` holds (or fails with the last value after `timeoutMs`). */
export async function waitFor<T>(probe: () => Promise<T>, check: (value: T) => boolean, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (check(value)) return value;
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms; last value: ${JSON.stringify(value)}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
