import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { newId } from '../../domain/ids.js';
import { connectorConformance } from '../testing/conformance.js';
import type { GrantSpec } from '../types.js';
import { NoopConnector } from './noop-connector.js';

const dir = mkdtempSync(join(tmpdir(), 'lapse-noop-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const connector = new NoopConnector();
const target = {
  name: 'prod-db',
  connector: 'noop',
  description: '',
  settings: { delay: 1 },
  labels: {},
  entitlements: new Map(),
};

function grant(overrides: Partial<GrantSpec> = {}): GrantSpec {
  return {
    grantId: newId('grant'),
    principalId: `user-${Math.random().toString(36).slice(2, 8)}`,
    target,
    entitlement: { name: 'readonly', target: 'prod-db', description: '', settings: {}, labels: {} },
    durationMs: 60_000,
    notAfter: new Date(Date.now() + 60_000),
    parameters: {},
    ...overrides,
  };
}

connectorConformance({
  name: 'noop',
  connector: () => connector,
  grant,
  hasAccess: async (g) => connector.hasAccess(g.target.name, g.entitlement.name, g.principalId),
  createUnmanaged: async (g) => {
    const principalId = `outsider-${g.grantId}`;
    connector.addUnmanaged(g.target, g.entitlement.name, principalId);
    return principalId;
  },
});

describe('noop connector', () => {
  it('fails on command and recovers', async () => {
    const g = grant();
    connector.behaviour('prod-db').failProvision = true;
    await expect(connector.provision(g, AbortSignal.timeout(1000))).rejects.toThrow(/told to fail provision/);
    connector.behaviour('prod-db').failProvision = false;
    await connector.provision(g, AbortSignal.timeout(1000));
    expect(connector.hasAccess('prod-db', 'readonly', g.principalId)).toBe(true);
  });

  it('is slow on command and honours the deadline', async () => {
    connector.behaviour('prod-db').delayMs = 1_000;
    await expect(connector.provision(grant(), AbortSignal.timeout(20))).rejects.toThrow();
    connector.behaviour('prod-db').delayMs = 0;
  });

  it('remembers access across processes through its call log', async () => {
    const logged = { ...target, name: 'logged', settings: { callLog: join(dir, 'calls.jsonl') } };
    const g = grant({ target: logged });
    await new NoopConnector().provision(g, AbortSignal.timeout(1000));
    const restarted = new NoopConnector();
    expect(await restarted.listAccess(logged, AbortSignal.timeout(1000))).toEqual([
      { account: g.principalId, principalId: g.principalId, entitlement: 'readonly', grantId: g.grantId },
    ]);
    await restarted.revoke(g, null, AbortSignal.timeout(1000));
    expect(restarted.calls.at(-1)?.effect).toBe('removed');
  });

  it('rejects settings of the wrong type', () => {
    expect(connector.validateSettings({ ...target, settings: { delay: 'slow', failRevoke: 'yes' } })).toEqual([
      'targets.prod-db.settings.delay: must be a number of milliseconds from 0 to 60000',
      'targets.prod-db.settings.failRevoke: must be true or false',
    ]);
  });
});
