import { afterAll, beforeAll, expect, it } from 'vitest';
import { startEngine, waitFor, type TestEngine } from '../../../test/support/engine.js';
import { configWithAuth, countAudit, createLocalUser, PASSWORD, sessionCookieFrom } from '../../../test/support/sign-in.js';
import { describeEachStore } from '../../../test/support/stores.js';
import { authFor } from '../../../test/support/auth-service.js';
import { issueApiToken } from '../../auth/index.js';
import { totpCodeAt } from '../../auth/mfa/index.js';
import { buildApiServer, type ApiServer } from '../index.js';

/** TEST_CONFIG plus a target lending its `postgres` account (a noop target: its accounts live in memory). */
const VAULT_TARGET = `  vault-db:
    connector: noop
    entitlements:
      superuser: { checkout: { account: postgres } }
  flaky:
`;

interface Session {
  readonly cookie: string;
  readonly csrf: string;
}

describeEachStore('/api/v1/vault (security)', ({ store }) => {
  let t: TestEngine;
  let app: ApiServer;
  const tokens: Record<string, string> = {};
  let secret = '';
  beforeAll(async () => {
    const yaml = configWithAuth('loginLimits: { perAccountPerHour: 1000, perIpPerMinute: 1000 }').replace('  flaky:\n', VAULT_TARGET);
    t = await startEngine(store(), { yaml });
    app = await buildApiServer({ engine: t.engine, auth: authFor(t.engine), version: 'test' });
    const alice = await createLocalUser(store(), 'alice', ['sre']);
    const root = await createLocalUser(store(), 'root', ['admins']);
    const auditor = await createLocalUser(store(), 'auditor', []);
    const issue = async (userId: string, scopes: string[]) =>
      (await issueApiToken(store().db, { userId, name: 't', scopes, expiresInMs: 3_600_000 }, new Date())).token;
    tokens.alice = await issue(alice.id, ['read', 'request', 'admin']);
    tokens.auditor = await issue(auditor.id, ['read']);
    tokens.rootRead = await issue(root.id, ['read']);
    // The account's live password, as the target knows it before Lapse does.
    await t.noop.rotation.verifyPassword(t.engine.config.targets.get('vault-db')!, 'postgres', 'the-live-superuser-password', AbortSignal.timeout(1000));
  });
  afterAll(async () => {
    await app.close();
    await t.stop();
  });

  const login = async (name: string): Promise<Session> => {
    const res = await app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { username: name, password: PASSWORD } });
    expect(res.statusCode).toBe(200);
    return { cookie: sessionCookieFrom(res), csrf: (res.json() as { csrfToken: string }).csrfToken };
  };
  const call = (session: Session, method: 'GET' | 'POST', url: string, payload?: object) =>
    app.inject({
      method,
      url,
      ...(payload ? { payload } : {}),
      cookies: { lapse_session: session.cookie },
      headers: method === 'GET' ? {} : { 'x-csrf-token': session.csrf },
    });
  const withToken = (token: string | undefined, method: 'GET' | 'POST', url: string, payload?: object) =>
    app.inject({ method, url, ...(payload ? { payload } : {}), headers: token ? { authorization: `Bearer ${token}` } : {} });
  const ONBOARD = '/api/v1/vault/accounts/vault-db/postgres/onboard';
  const LIST = '/api/v1/vault/accounts';

  it('refuses both routes without credentials (audited)', async () => {
    const before = await countAudit(store(), 'auth.refused');
    expect((await withToken(undefined, 'GET', LIST)).statusCode).toBe(401);
    const res = await withToken(undefined, 'POST', ONBOARD, { password: 'the-live-superuser-password' });
    expect(res.statusCode).toBe(401);
    expect(res.json()).toMatchObject({ code: 'unauthenticated' });
    expect(await countAudit(store(), 'auth.refused')).toBe(before + 2);
  });

  it('shows the vault to admins and auditors only, and lets only admins onboard', async () => {
    const listed = await withToken(tokens.alice, 'GET', LIST);
    expect(listed.statusCode).toBe(403);
    expect(await countAudit(store(), 'vault.list_refused')).toBe(1);
    expect((await withToken(tokens.auditor, 'GET', LIST)).json()).toEqual({ accounts: [] });
    // alice's admin scope is cut to what she may do (she is no admin); root's read token lacks the scope.
    expect((await withToken(tokens.alice, 'POST', ONBOARD, { password: 'the-live-superuser-password' })).statusCode).toBe(403);
    expect((await withToken(tokens.rootRead, 'POST', ONBOARD, { password: 'the-live-superuser-password' })).statusCode).toBe(403);
    const session = await login('alice');
    const before = await countAudit(store(), 'auth.refused');
    const notAdmin = await call(session, 'POST', ONBOARD, { password: 'the-live-superuser-password' });
    expect(notAdmin.statusCode).toBe(403);
    // A session carries the admin scope only for admins: refused (and audited) before the role check.
    expect(await countAudit(store(), 'auth.refused')).toBe(before + 1);
    expect((await withToken(tokens.auditor, 'GET', LIST)).json()).toEqual({ accounts: [] });
  });

  it('rekey: refused without credentials, to non-admins and to auditors (audited); nothing changes', async () => {
    const REKEY = '/api/v1/vault/rekey';
    const before = await countAudit(store(), 'auth.refused');
    expect((await withToken(undefined, 'POST', REKEY)).statusCode).toBe(401);
    expect((await withToken(tokens.auditor, 'POST', REKEY)).statusCode).toBe(403);
    expect((await withToken(tokens.rootRead, 'POST', REKEY)).statusCode).toBe(403);
    const refused = await withToken(tokens.alice, 'POST', REKEY);
    expect(refused.statusCode).toBe(403);
    expect(refused.json()).toMatchObject({ code: 'forbidden' });
    // alice's admin scope is cut to what she may do: refused (and audited) like every caller without it.
    expect(await countAudit(store(), 'auth.refused')).toBe(before + 4);
    expect(await countAudit(store(), 'vault.rekey_started')).toBe(0);
  });

  it('needs a fresh second factor, refuses a wrong password storing nothing, then onboards and rotates; no password is ever echoed', async () => {
    const session = await login('root');
    const noCsrf = await app.inject({ method: 'POST', url: ONBOARD, payload: { password: 'x' }, cookies: { lapse_session: session.cookie } });
    expect(noCsrf.statusCode).toBe(403);
    const stale = await call(session, 'POST', ONBOARD, { password: 'the-live-superuser-password' });
    expect(stale.statusCode).toBe(401);
    expect(stale.json()).toMatchObject({ code: 'mfa_step_up_required' });

    const enrolled = await call(session, 'POST', '/api/v1/mfa/totp');
    secret = (enrolled.json() as { secret: string }).secret;
    await call(session, 'POST', '/api/v1/mfa/totp/confirm', { code: totpCodeAt(secret, new Date(Date.now() - 30_000)) });
    expect((await call(session, 'POST', '/api/v1/mfa/step-up', { totp: totpCodeAt(secret, new Date()) })).statusCode).toBe(200);

    const bad = await call(session, 'POST', ONBOARD, { password: 'a-wrong-guess-1234' });
    expect(bad.statusCode).toBe(400);
    expect(bad.body).not.toContain('a-wrong-guess-1234');
    expect((await withToken(tokens.auditor, 'GET', LIST)).json()).toEqual({ accounts: [] });
    const tooLong = await call(session, 'POST', ONBOARD, { password: 'p'.repeat(1025) });
    expect(tooLong.statusCode).toBe(400);
    expect((await call(session, 'POST', '/api/v1/vault/accounts/vault-db/nobody/onboard', { password: 'x' })).statusCode).toBe(404);

    const ok = await call(session, 'POST', ONBOARD, { password: 'the-live-superuser-password' });
    expect(ok.statusCode).toBe(202);
    expect(ok.json()).toMatchObject({ account: { target: 'vault-db', account: 'postgres', status: 'rotating', generation: 1, onboardedBy: 'root' } });
    expect(ok.body).not.toContain('the-live-superuser-password');
    const listed = await waitFor(
      async () => (await withToken(tokens.auditor, 'GET', LIST)).json() as { accounts: { status: string; generation: number }[] },
      (body) => body.accounts[0]?.status === 'ready',
    );
    expect(listed.accounts).toMatchObject([{ status: 'ready', generation: 2 }]);
    expect(t.noop.rotation.accepts('vault-db', 'postgres', 'the-live-superuser-password')).toBe(false);
    const audit = (await store().db.selectFrom('audit_events').select('payload').execute()).map((r) => r.payload).join('\n');
    expect(audit).not.toContain('the-live-superuser-password');
    expect(audit).not.toContain('a-wrong-guess-1234');
  });
});
