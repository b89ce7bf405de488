import { randomBytes } from 'node:crypto';
import { pino } from 'pino';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { waitFor } from '../../test/support/engine.js';
import { describeEachStore } from '../../test/support/stores.js';
import { parseConfig } from '../config/index.js';
import { connectorRegistry, NoopConnector } from '../connectors/index.js';
import { createSealer } from '../secrets/index.js';
import { getVaultAccount, insertTotpFactor, insertUser, replaceSealedValue, SEALED_COLUMNS, type Store } from '../store/index.js';
import { Engine } from './engine.js';
import { credentialsContext } from './held-credentials.js';
import { vaultSealContext } from './vault-rotation.js';

/**
 * `lapse vault rekey` through the engine on both stores: every sealed value (vault passwords,
 * held credentials, TOTP seeds) ends under the new KEK and opens with it alone; a run cut short
 * leaves everything readable and a rerun finishes; a value no key opens is reported, not lost.
 */
const CONFIG = `
version: 1
roles: { admins: { users: [root] } }
targets:
  vault-db:
    connector: noop
    entitlements:
      superuser: { checkout: { account: postgres } }
      owner: { checkout: { account: owner } }
policies:
  - { name: sre, subjects: { groups: [sre] }, entitlements: ["vault-db/*"], autoApprove: true, duration: { default: 1h, max: 8h } }
scheduler: { pollInterval: 50ms, connectorTimeout: 2s, revokeBackoff: { min: 20ms, max: 200ms } }
`;

const OLD_KEY = randomBytes(32);
const NEW_KEY = randomBytes(32);
const root = { id: 'root', kind: 'user' as const, groups: [] as string[] };
const alice = { id: 'alice', kind: 'user' as const, groups: ['sre'] };

describeEachStore('vault rekey', ({ store }) => {
  const noop = new NoopConnector();
  const lines: string[] = [];
  const engineWith = (keys: Buffer[], db: Store) =>
    new Engine({
      store: db,
      config: parseConfig(CONFIG, 'rekey.yaml', {}),
      connectors: connectorRegistry([noop]),
      logger: pino({ level: 'debug' }, { write: (line: string) => void lines.push(line) }),
      sealer: createSealer(keys[0]!, keys.slice(1)),
    });
  let before: Engine;
  let grantId = '';
  const totpSeed = 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP';
  const oldSealer = createSealer(OLD_KEY);
  const newOnly = createSealer(NEW_KEY);

  beforeAll(async () => {
    // Lapse ran under the old key: a vaulted account, a check-out's credentials waiting, a TOTP seed.
    before = engineWith([OLD_KEY], store());
    await before.start();
    const target = before.config.targets.get('vault-db')!;
    for (const [account, password] of [
      ['postgres', 'pg-password-from-the-safe'],
      ['owner', 'owner-password-from-the-wiki'],
    ] as const) {
      await noop.rotation.verifyPassword(target, account, password, AbortSignal.timeout(1000));
      await before.onboardVaultAccount({ target: 'vault-db', account, password, by: root, client: { mfaAt: new Date() } });
      await waitFor(
        () => getVaultAccount(store().db, { target: 'vault-db', account }),
        (a) => a?.status === 'ready' && a.generation === 2,
      );
    }
    const { request } = await before.submit({ principal: alice, target: 'vault-db', entitlement: 'superuser', reason: 'maintenance' });
    grantId = (await before.read.request(request.id))!.grantId!;
    await waitFor(
      () => before.read.grant(grantId),
      (g) => g?.status === 'active',
    );
    await before.stop();
    await store()
      .db.transaction()
      .execute(async (tx) => {
        await insertUser(tx, {
          id: 'usr_rekey',
          name: 'rekey-user',
          kind: 'user',
          groups: '[]',
          password_hash: null,
          created_at: new Date(),
          disabled_at: null,
          external_id: null,
        });
        await insertTotpFactor(tx, {
          id: 'totp_rekey',
          user_id: 'usr_rekey',
          secret_sealed: oldSealer.seal(totpSeed, 'totp:usr_rekey'),
          status: 'active',
          last_step: null,
          created_at: new Date(),
          confirmed_at: new Date(),
          last_used_at: null,
        });
      });
  });
  afterAll(() => {
    expect(lines.join('\n')).not.toContain('pg-password-from-the-safe');
  });

  /** The rekey's audit events, in order; none carries a sealed value. */
  const rekeyEvents = async () => {
    const payloads = (await store().db.selectFrom('audit_events').select('payload').orderBy('seq').execute()).map((r) => r.payload);
    expect(payloads.join('\n')).not.toMatch(/v2\.[0-9a-f]{16}\./);
    return payloads.map((p) => JSON.parse(p) as { action: string; data: unknown }).filter((e) => e.action.startsWith('vault.rekey'));
  };
  const sealedValues = async () => {
    const accounts = await store().db.selectFrom('vault_accounts').select(['id', 'generation', 'current_sealed', 'pending_sealed']).execute();
    const credentials = await store().db.selectFrom('grant_credentials').select(['grant_id', 'sealed', 'key_id']).execute();
    const totp = await store().db.selectFrom('mfa_totp').select(['user_id', 'secret_sealed']).execute();
    return { accounts, credentials, totp };
  };

  it('a run cut short leaves every value readable; a rerun finishes; everything then opens with the new key alone', async () => {
    const after = engineWith([NEW_KEY, OLD_KEY], store());
    const { accounts } = await sealedValues();
    expect(accounts).toHaveLength(2);
    // A crash after the first batch: one value re-wrapped, the others not yet (the failpoint
    // `rekey:after-batch` kills a real process there; this is the state it leaves).
    const first = accounts[0]!;
    const rewrapped = after.sealer.rewrap(first.current_sealed, vaultSealContext(first.id, first.generation));
    expect(await replaceSealedValue(store().db, SEALED_COLUMNS[0], first.id, first.current_sealed, rewrapped, after.sealer.keyId)).toBe(true);
    // The same compare-and-set again: the value changed meanwhile, nothing is written.
    expect(await replaceSealedValue(store().db, SEALED_COLUMNS[0], first.id, first.current_sealed, rewrapped, after.sealer.keyId)).toBe(false);
    for (const a of accounts)
      expect(after.sealer.open((await getVaultAccount(store().db, { id: a.id }))!.currentSealed, vaultSealContext(a.id, a.generation))).toBeTruthy();

    const report = await after.rekeyVault('root');
    expect(report).toMatchObject({
      keyId: newOnly.keyId,
      rewrapped: { vault_current: 1, vault_pending: 0, grant_handout: 1, mfa_totp: 1 },
      changedMeanwhile: 0,
      unreadable: [],
      remaining: 0,
    });
    const now = await sealedValues();
    for (const a of now.accounts) {
      expect(newOnly.keyIdOf(a.current_sealed)).toBe(newOnly.keyId);
      expect(newOnly.open(a.current_sealed, vaultSealContext(a.id, a.generation))).toMatch(/^[A-Za-z0-9]{32}$/);
    }
    expect(now.credentials).toHaveLength(1);
    expect(now.credentials[0]!.key_id).toBe(newOnly.keyId);
    expect(JSON.parse(newOnly.open(now.credentials[0]!.sealed, credentialsContext(grantId)))).toMatchObject({ username: 'postgres' });
    expect(newOnly.open(now.totp[0]!.secret_sealed, 'totp:usr_rekey')).toBe(totpSeed);

    // Idempotent: nothing left to do.
    expect(await after.rekeyVault('root')).toMatchObject({ rewrapped: { vault_current: 0, grant_handout: 0, mfa_totp: 0 }, remaining: 0 });
    // The holder still gets the password once, now opened under the new key; and it is the one the target accepts.
    const credentials = await after.fetchCredentials({ grantId, by: alice });
    expect(noop.rotation.accepts('vault-db', 'postgres', credentials.password!)).toBe(true);

    const audit = (await rekeyEvents()).map((e) => e.action);
    expect(audit).toEqual(['vault.rekey_started', 'vault.rekeyed', 'vault.rekey_started', 'vault.rekeyed']);
  });

  it('a value no configured key opens is reported and left as it is; the run still finishes the rest', async () => {
    const lostKey = createSealer(randomBytes(32));
    const row = (await sealedValues()).totp[0]!;
    const orphan = lostKey.seal('seed-under-a-lost-key', 'totp:usr_rekey');
    await replaceSealedValue(store().db, SEALED_COLUMNS[3], 'totp_rekey', row.secret_sealed, orphan, '');
    const after = engineWith([NEW_KEY, OLD_KEY], store());
    const report = await after.rekeyVault('root');
    expect(report.unreadable).toEqual([
      { kind: 'mfa_totp', id: 'totp_rekey', error: expect.stringMatching(/sealed with key [0-9a-f]{16}, which is not configured/) },
    ]);
    expect(report.remaining).toBe(1);
    expect((await sealedValues()).totp[0]!.secret_sealed).toBe(orphan);
    const events = await rekeyEvents();
    expect(events.at(-1)).toMatchObject({ action: 'vault.rekeyed', data: { unreadable: 1, remaining: 1, severity: 'high' } });
  });
});
