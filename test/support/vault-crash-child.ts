/**
 * A Lapse process for the vault's kill -9 test (test/vault-crash.test.ts). The parent arms
 * LAPSE_FAILPOINTS so the process kills itself at one step of a rotation.
 *
 * argv: <mode> <config.yaml> <postgres URL> <sealer key, base64> <account> [<file>]
 *   onboard   hand Lapse the account's password (LAPSE_TEST_ONBOARD_PASSWORD), run until it is rotated
 *   checkout  alice checks the account out; the password she is given is written to <file>
 *   release   alice releases her check-out, run until it is revoked (its rotation done)
 *   resume    only run the scheduler until the account is rotated and every grant has ended
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { pino } from 'pino';
import { parseConfig } from '../../src/config/index.js';
import { builtInConnectors } from '../../src/connectors/index.js';
import { Engine } from '../../src/engine/index.js';
import { createSealer } from '../../src/secrets/index.js';
import { openStore } from '../../src/store/index.js';

const [mode, configPath, url, key, account, file] = process.argv.slice(2) as [string, string, string, string, string, string | undefined];
const store = await openStore({ databaseUrl: url });
const config = parseConfig(readFileSync(configPath, 'utf8'), configPath, process.env);
// Logs go to stderr, which the parent scans for passwords.
const logger = pino({ level: 'debug' }, process.stderr);
const engine = new Engine({ store, config, connectors: builtInConnectors(), sealer: createSealer(Buffer.from(key, 'base64')), logger });
await engine.start();
const alice = { id: 'alice', kind: 'user' as const, groups: ['dba'] };

async function until(what: string, done: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (!(await done())) {
    if (Date.now() > deadline) {
      process.stderr.write(`timed out waiting for ${what}\n`);
      process.exit(1);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
const rotated = async () => (await engine.vaultAccounts()).some((a) => a.account === account && a.status === 'ready');
const allEnded = async () => (await engine.read.grants({ statuses: ['provisioning', 'active', 'revoking'] })).length === 0;

if (mode === 'onboard') {
  const password = process.env.LAPSE_TEST_ONBOARD_PASSWORD!;
  await engine.onboardVaultAccount({ target: 'db', account, password, by: { id: 'root', kind: 'user', groups: [] }, client: { mfaAt: new Date() } });
  await until('the onboarding rotation', rotated);
}
if (mode === 'checkout') {
  const { request } = await engine.submit({ principal: alice, target: 'db', entitlement: 'owner', reason: 'crash test check-out' });
  let grantId = '';
  await until('the check-out', async () => {
    grantId = (await engine.read.request(request.id))?.grantId ?? '';
    return grantId !== '' && (await engine.read.grant(grantId))?.status === 'active';
  });
  writeFileSync(file!, (await engine.fetchCredentials({ grantId, by: alice })).password!);
}
if (mode === 'release') {
  const [held] = await engine.read.grants({ principalId: 'alice', statuses: ['active'] });
  await engine.release({ grantId: held!.id, by: alice, reason: 'crash test check-in' });
  await until('the check-in', allEnded);
}
if (mode === 'resume') {
  await until('the rotation and every grant to end', async () => (await rotated()) && (await allEnded()));
}
await engine.stop();
await store.close();
process.exit(0);
