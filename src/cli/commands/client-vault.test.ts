import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_CONFIG, waitFor } from '../../../test/support/engine.js';
import { cliHome, runLapse, startLapseServer, type LapseServer } from '../../../test/support/lapse-server.js';
import { totpCodeAt } from '../../auth/mfa/index.js';

/** `lapse vault onboard` and `lapse vault ls` against a real server, as a separate process. */
const yaml = TEST_CONFIG.replace(
  '  flaky:\n',
  '  vault-db:\n    connector: noop\n    entitlements:\n      superuser: { checkout: { account: postgres } }\n  flaky:\n',
).replace(
  'policies:\n',
  'policies:\n  - { name: vault-sre, subjects: { groups: [sre] }, entitlements: ["vault-db/*"], autoApprove: true, duration: { default: 1h, max: 2h } }\n',
);
const PASSWORD = 'the-superuser-password-from-the-safe';

describe('lapse vault', { timeout: 60_000 }, () => {
  const home = cliHome();
  let server: LapseServer;
  let token = '';
  let secret = '';
  beforeAll(async () => {
    server = await startLapseServer({ yaml });
    token = await server.token('root', ['read', 'request', 'admin']);
    const headers = { authorization: `Bearer ${token}` };
    secret = ((await server.app.inject({ method: 'POST', url: '/api/v1/mfa/totp', headers })).json() as { secret: string }).secret;
    await server.app.inject({ method: 'POST', url: '/api/v1/mfa/totp/confirm', headers, payload: { code: totpCodeAt(secret, new Date(Date.now() - 30_000)) } });
    await server.engine.noop.rotation.verifyPassword(server.engine.engine.config.targets.get('vault-db')!, 'postgres', PASSWORD, AbortSignal.timeout(1000));
  });
  afterAll(async () => {
    await server?.close();
    home.remove();
  });
  const run = (args: string[], input?: string) => runLapse(args, { LAPSE_SERVER: server.url, LAPSE_TOKEN: token, LAPSE_CONFIG_DIR: home.dir }, input);

  it('refuses to onboard without a password on stdin or a terminal, and never takes one as an argument', async () => {
    const none = await run(['vault', 'onboard', 'vault-db', 'postgres']);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/no password given/);
    const asArgument = await run(['vault', 'onboard', 'vault-db', 'postgres', PASSWORD]);
    expect(asArgument.code).toBe(2);
  });

  it('onboards with the password from stdin and a second factor, then lists the account as rotated', async () => {
    const onboarded = await run(
      ['vault', 'onboard', 'vault-db', 'postgres', '--password-stdin', '--mfa-code', totpCodeAt(secret, new Date(Date.now() + 30_000))],
      `${PASSWORD}\n`,
    );
    expect(onboarded.code, onboarded.stderr).toBe(0);
    expect(onboarded.stdout).toMatch(/onboarded vault-db\/postgres: rotating/);
    expect(onboarded.stdout + onboarded.stderr).not.toContain(PASSWORD);
    await waitFor(
      async () => (await run(['vault', 'ls'])).stdout,
      (out) => /vault-db\/postgres {2}ready/.test(out),
    );
    expect(server.engine.noop.rotation.accepts('vault-db', 'postgres', PASSWORD)).toBe(false);
  });

  it('rekey: admins re-wrap every sealed value under the current key; others are refused', async () => {
    const rekeyed = await run(['vault', 'rekey']);
    expect(rekeyed.code, rekeyed.stderr).toBe(0);
    expect(rekeyed.stdout).toMatch(/re-wrapped under key [0-9a-f]{16}: vault_current 0, vault_pending 0, grant_handout 0, mfa_totp 0/);
    expect(rekeyed.stdout).toMatch(/nothing is left under an older key/);
    const json = await run(['vault', 'rekey', '--json']);
    expect(JSON.parse(json.stdout)).toMatchObject({ rekey: { remaining: 0, unreadable: [] } });
    const reader = await server.token('alice', ['read', 'request', 'admin']);
    const refused = await runLapse(['vault', 'rekey'], { LAPSE_SERVER: server.url, LAPSE_TOKEN: reader, LAPSE_CONFIG_DIR: home.dir });
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/admin/);
  });

  it('checkout: a request through the normal path, followed until active, the password shown once; checkin rotates it', async () => {
    const aliceToken = await server.token('alice');
    const asAlice = (args: string[]) => runLapse(args, { LAPSE_SERVER: server.url, LAPSE_TOKEN: aliceToken, LAPSE_CONFIG_DIR: home.dir });
    const unknown = await asAlice(['vault', 'checkout', 'vault-db/nobody', '--reason', 'x']);
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toMatch(/there is no vault account vault-db\/nobody you may check out/);
    expect((await asAlice(['vault', 'checkout', 'vault-db', '--reason', 'x'])).stderr).toMatch(/is not <target>\/<account>/);

    const out = await asAlice(['vault', 'checkout', 'vault-db/postgres', '--reason', 'vacuum the big table', '--duration', '30m', '--json']);
    expect(out.code, out.stderr).toBe(0);
    const answer = JSON.parse(out.stdout) as { outcome: string; grant: { id: string; entitlement: string }; credentials: Record<string, string> };
    expect(answer).toMatchObject({ outcome: 'active', grant: { entitlement: 'superuser' }, credentials: { username: 'postgres' } });
    const password = answer.credentials.password!;
    expect(server.engine.noop.rotation.accepts('vault-db', 'postgres', password)).toBe(true);
    // Shown once: a second fetch is refused.
    expect((await asAlice(['credentials', answer.grant.id])).code).not.toBe(0);

    const listed = await run(['vault', 'ls']);
    expect(listed.stdout).toMatch(new RegExp(`vault-db/postgres {2}checked out by alice \\(${answer.grant.id}\\)`));
    expect(listed.stdout).not.toContain(password);
    const checkedIn = await asAlice(['vault', 'checkin', answer.grant.id, '--reason', 'done']);
    expect(checkedIn.code, checkedIn.stderr).toBe(0);
    expect(checkedIn.stdout).toMatch(/^checked in: /);
    expect(checkedIn.stdout).not.toContain(password);
    await waitFor(
      async () => server.engine.noop.rotation.accepts('vault-db', 'postgres', password),
      (accepted) => !accepted,
    );
  });
});
