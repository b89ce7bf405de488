import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../config/index.js';
import { Engine } from '../../engine/index.js';
import { getGrant, getRequest } from '../../store/index.js';
import { offline } from '../../../test/support/environment.js';
import { waitFor } from '../../../test/support/engine.js';
import { openTestStore, type OpenedStore } from '../../../test/support/stores.js';
import { connectorRegistry } from '../types.js';
import { RedisConnector } from './redis-connector.js';
import { openRedisScratch, type RedisScratch } from './testing/scratch-server.js';

/**
 * The whole path on the real Redis: an auto-approved request becomes an ACL user, alice fetches
 * the password once and reads with redis-cli, reconciliation removes a user an operator made
 * behind Lapse's back, and release takes alice's access away.
 */
const execFileAsync = promisify(execFile);

describe.skipIf(offline())('redis connector in the engine', () => {
  let scratch: RedisScratch;
  let opened: OpenedStore;
  let engine: Engine;
  const alice = { id: 'alice@example.com', kind: 'user' as const, groups: ['sre'] };

  beforeAll(async () => {
    scratch = await openRedisScratch();
    await scratch.admin.set(`${scratch.prefix}:greeting`, 'hello');
    const yaml = `
version: 1
targets:
  cache:
    connector: redis
    reconcile: { remediate: true }
    settings: { host: "${scratch.host}", port: ${scratch.port}, username: ${scratch.lapseUser}, password: "\${env:REDIS_LAPSE_PASSWORD}" }
    entitlements:
      readonly: { settings: { keys: ["${scratch.prefix}:*"], commands: ["+@read", "-@dangerous"] } }
policies:
  - name: sre
    subjects: { groups: [sre] }
    entitlements: ["cache/readonly"]
    autoApprove: true
scheduler: { pollInterval: 100ms, connectorTimeout: 10s }
`;
    opened = await openTestStore('pglite');
    engine = new Engine({
      store: opened.store,
      config: parseConfig(yaml, 'redis-engine.yaml', { REDIS_LAPSE_PASSWORD: scratch.password }),
      connectors: connectorRegistry([new RedisConnector()]),
    });
    await engine.start();
  });
  afterAll(async () => {
    await engine?.stop();
    await opened?.close();
    await scratch?.admin.del(`${scratch.prefix}:greeting`);
    await scratch?.close();
  });

  const read = async (username: string, password: string) => {
    const { stdout, stderr } = await execFileAsync('redis-cli', [
      '-h',
      scratch.host,
      '-p',
      String(scratch.port),
      '--user',
      username,
      '--pass',
      password,
      '--no-auth-warning',
      'GET',
      `${scratch.prefix}:greeting`,
    ]);
    return !/AUTH failed|WRONGPASS/.test(stderr + stdout) && stdout.trim() === 'hello';
  };

  it('provisions, hands out the password once, reconciles standing access and revokes on release', async () => {
    const { request } = await engine.submit({ principal: alice, target: 'cache', entitlement: 'readonly', durationMs: 3_600_000, reason: 'engine test' });
    const grantId = (await getRequest(opened.store.db, request.id))!.grantId!;
    await waitFor(
      () => getGrant(opened.store.db, grantId),
      (g) => g?.status === 'active',
    );
    const credentials = await engine.fetchCredentials({ grantId, by: alice });
    expect(credentials.username).toBe(`lapse_${grantId}:cache:readonly:alice@example.com`);
    expect(await read(credentials.username!, credentials.password!)).toBe(true);

    // An operator, by hand, with no grant in Lapse.
    const outsider = `outsider-${randomBytes(3).toString('hex')}`;
    await scratch.admin.call('ACL', 'SETUSER', outsider, 'on', '>outsider-password', `~${scratch.prefix}:*`, '+@read');
    expect(await read(outsider, 'outsider-password')).toBe(true);
    const [report] = await engine.reconcile('cache', { actor: 'test' });
    expect(report!.error).toBeNull();
    expect(report!.findings).toContainEqual(expect.objectContaining({ kind: 'standing', status: 'remediated', account: outsider, entitlement: 'readonly' }));
    expect(await read(outsider, 'outsider-password')).toBe(false);
    expect(await read(credentials.username!, credentials.password!)).toBe(true);
    // A `default` user with every key (a stock Redis) is standing access too, but Redis cannot delete it: it stays open, with why.
    const defaultFinding = report!.findings.find((f) => f.account === 'default');
    if (defaultFinding) expect(defaultFinding).toMatchObject({ status: 'open' });

    await engine.release({ grantId, by: alice, reason: 'done' });
    await waitFor(
      () => getGrant(opened.store.db, grantId),
      (g) => g?.status === 'revoked',
    );
    expect(await read(credentials.username!, credentials.password!)).toBe(false);
  });
});
