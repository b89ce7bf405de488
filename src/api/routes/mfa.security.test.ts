import { sql } from 'kysely';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { alice, startEngine, type TestEngine } from '../../../test/support/engine.js';
import { configWithAuth, countAudit, createLocalUser, PASSWORD, sessionCookieFrom } from '../../../test/support/sign-in.js';
import { describeEachStore } from '../../../test/support/stores.js';
import { issueApiToken } from '../../auth/index.js';
import { totpCodeAt } from '../../auth/mfa/index.js';
import { isLapseError } from '../../domain/errors.js';
import { buildApiServer, type ApiServer } from '../index.js';
import { rememberCaller, withStepUpGuidance } from '../step-up.js';
import { authFor } from '../../../test/support/auth-service.js';

/** TEST_CONFIG plus a policy that needs MFA within 10 minutes to ask, and one whose approvers need it to approve. */
const MFA_POLICY = `
  - name: sre-mfa
    subjects: { groups: [sre] }
    entitlements: ["flaky/readonly"]
    require: { mfa: { maxAge: 10m } }
    autoApprove: true
  - name: approve-with-mfa
    subjects: { groups: [sre] }
    entitlements: ["prod-db/readonly"]
    approval:
      stages:
        - { name: leads, approvers: { groups: [sre-leads] }, mfa: { maxAge: 5m } }`;

interface Session {
  readonly cookie: string;
  readonly csrf: string;
}

describeEachStore('/api/v1/mfa (security)', ({ store }) => {
  let t: TestEngine;
  let app: ApiServer;
  let aliceToken = '';
  let aliceReadToken = '';
  const secrets: Record<string, string> = {};
  beforeAll(async () => {
    const yaml = configWithAuth('sessions: { idleTimeout: 30m, absoluteTimeout: 12h }\nloginLimits: { perAccountPerHour: 1000, perIpPerMinute: 1000 }').replace(
      'policies:\n',
      `policies:${MFA_POLICY}\n`,
    );
    t = await startEngine(store(), { yaml });
    app = await buildApiServer({ engine: t.engine, auth: authFor(t.engine), version: 'test' });
    const aliceUser = await createLocalUser(store(), 'alice', ['sre', 'oncall']);
    await createLocalUser(store(), 'bob', ['sre-leads']);
    await createLocalUser(store(), 'carol', ['security']);
    aliceToken = (await issueApiToken(store().db, { userId: aliceUser.id, name: 'cli', scopes: ['read', 'request'], expiresInMs: 3_600_000 }, new Date()))
      .token;
    aliceReadToken = (await issueApiToken(store().db, { userId: aliceUser.id, name: 'ro', scopes: ['read'], expiresInMs: 3_600_000 }, new Date())).token;
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
  const call = (session: Session | null, method: 'GET' | 'POST' | 'DELETE', url: string, payload?: object, headers: Record<string, string> = {}) =>
    app.inject({
      method,
      url,
      ...(payload ? { payload } : {}),
      ...(session ? { cookies: { lapse_session: session.cookie } } : {}),
      headers: { ...(session && method !== 'GET' ? { 'x-csrf-token': session.csrf } : {}), ...headers },
    });
  const withToken = (token: string, method: 'GET' | 'POST' | 'DELETE', url: string, payload?: object, headers: Record<string, string> = {}) =>
    app.inject({ method, url, ...(payload ? { payload } : {}), headers: { authorization: `Bearer ${token}`, ...headers } });
  /** The code the authenticator app shows one step ahead: inside the window, and newer than any used so far. */
  const nextCode = (name: string, stepsAhead = 1) => totpCodeAt(secrets[name]!, new Date(Date.now() + stepsAhead * 30_000));
  /** Each code works once and only newer ones after it: as if the last use was minutes ago (the clock moved on). */
  const laterCode = async (name: string) => {
    await sql`UPDATE mfa_totp SET last_step = NULL FROM users u WHERE u.id = mfa_totp.user_id AND u.name = ${name}`.execute(store().db);
    return nextCode(name, 0);
  };
  const enrollTotp = async (name: string, session: Session) => {
    const enrolled = await call(session, 'POST', '/api/v1/mfa/totp');
    expect(enrolled.statusCode).toBe(201);
    expect(enrolled.headers['cache-control']).toBe('no-store');
    secrets[name] = (enrolled.json() as { secret: string }).secret;
    const confirmed = await call(session, 'POST', '/api/v1/mfa/totp/confirm', { code: totpCodeAt(secrets[name], new Date(Date.now() - 30_000)) });
    expect(confirmed.json()).toEqual({ factor: 'totp', status: 'active' });
  };

  const ROUTES: ['GET' | 'POST' | 'DELETE', string, object?][] = [
    ['GET', '/api/v1/mfa'],
    ['POST', '/api/v1/mfa/totp'],
    ['POST', '/api/v1/mfa/totp/confirm', { code: '123456' }],
    ['DELETE', '/api/v1/mfa/totp'],
    ['POST', '/api/v1/mfa/passkeys/registration-options'],
    ['DELETE', '/api/v1/mfa/passkeys/pky_00000000000000000000000000'],
    ['POST', '/api/v1/mfa/passkeys/authentication-options'],
    ['POST', '/api/v1/mfa/step-up', { totp: '123456' }],
  ];

  it('refuses every MFA route without credentials, and audits each', async () => {
    const before = await countAudit(store(), 'auth.refused');
    for (const [method, url, payload] of ROUTES) {
      const res = await call(null, method, url, payload);
      expect(res.statusCode, `${method} ${url}`).toBe(401);
      expect(res.json()).toMatchObject({ code: 'unauthenticated' });
    }
    expect(await countAudit(store(), 'auth.refused')).toBe(before + ROUTES.length);
  });

  it('refuses cookie calls without the CSRF token (audited) and enrolls nothing', async () => {
    const session = await login('carol');
    const before = await countAudit(store(), 'auth.refused');
    for (const [method, url, payload] of ROUTES.filter(([m]) => m !== 'GET')) {
      const res = await call({ ...session, csrf: 'not-the-token' }, method, url, payload);
      expect(res.statusCode, `${method} ${url}`).toBe(403);
      expect(res.json()).toMatchObject({ code: 'forbidden', where: 'X-CSRF-Token' });
    }
    expect(await countAudit(store(), 'auth.refused')).toBe(before + ROUTES.length - 1);
    expect((await call(session, 'GET', '/api/v1/mfa')).json()).toMatchObject({ factors: [], totp: null, passkeys: [], stepUp: { enroll: '/api/v1/mfa' } });
  });

  it('refuses a read-only token changes to factors', async () => {
    const res = await withToken(aliceReadToken, 'POST', '/api/v1/mfa/totp');
    expect(res.statusCode).toBe(403);
  });

  it('enrolls an authenticator app in a session, steps up with a code, and refuses the same code again (replay audited with severity)', async () => {
    const session = await login('alice');
    await enrollTotp('alice', session);
    const code = nextCode('alice');
    const stepped = await call(session, 'POST', '/api/v1/mfa/step-up', { totp: code });
    expect(stepped.statusCode).toBe(200);
    const { mfaAt } = stepped.json() as { mfaAt: string };
    expect(((await call(session, 'GET', '/api/v1/auth/session')).json() as { mfaAt: string }).mfaAt).toBe(mfaAt);

    const replays = await countAudit(store(), 'auth.mfa_replay');
    const replay = await call(session, 'POST', '/api/v1/mfa/step-up', { totp: code });
    expect(replay.statusCode).toBe(401);
    expect(replay.json()).toMatchObject({ code: 'mfa_failed', where: 'totp' });
    expect(replay.body).not.toContain(code);
    expect(await countAudit(store(), 'auth.mfa_replay')).toBe(replays + 1);
    const { rows } = await store()
      .db.selectFrom('audit_events')
      .select('payload')
      .where('payload', 'like', '%auth.mfa_replay%')
      .orderBy('seq', 'desc')
      .limit(1)
      .execute()
      .then((r) => ({ rows: r }));
    expect(JSON.parse(rows[0]!.payload)).toMatchObject({ actor: 'alice', data: { factor: 'totp', reason: 'replay', severity: 'high' } });
  });

  it('refuses a wrong code (audited), a malformed one (400), and another user’s code', async () => {
    const session = await login('alice');
    const failed = await countAudit(store(), 'auth.mfa_failed');
    const right = [nextCode('alice', -1), nextCode('alice', 0), nextCode('alice', 1)];
    const wrong = ['000000', '111111', '222222'].find((c) => !right.includes(c))!;
    const res = await call(session, 'POST', '/api/v1/mfa/step-up', { totp: wrong });
    expect(res.statusCode).toBe(401);
    expect(res.json()).toMatchObject({ code: 'mfa_failed' });
    expect(await countAudit(store(), 'auth.mfa_failed')).toBe(failed + 1);

    for (const payload of [{ totp: '12345' }, { totp: 'abcdef' }, {}, { totp: '123456', webauthn: {} }, { totp: '123456', extra: 1 }]) {
      expect((await call(session, 'POST', '/api/v1/mfa/step-up', payload)).statusCode).toBe(400);
    }

    const bob = await login('bob');
    await enrollTotp('bob', bob);
    const bobs = nextCode('bob', 2);
    if (!right.includes(bobs)) {
      const cross = await call(session, 'POST', '/api/v1/mfa/step-up', { totp: bobs });
      expect(cross.json()).toMatchObject({ code: 'mfa_failed' });
    }
  });

  it('does not step up an API token through the endpoint (nothing spent), but through X-Lapse-MFA on the request that needs it', async () => {
    const code = await laterCode('alice');
    // A fresh step-up is needed to remove a factor: refused without one, with directions.
    const refused = await withToken(aliceToken, 'DELETE', '/api/v1/mfa/totp');
    expect(refused.statusCode).toBe(401);
    expect(refused.json()).toMatchObject({
      code: 'mfa_step_up_required',
      stepUp: { factors: ['totp'], endpoint: '/api/v1/mfa/step-up', header: 'X-Lapse-MFA: totp <code>' },
    });
    expect((refused.json() as { hint: string }).hint).toMatch(/X-Lapse-MFA: totp <code>/);

    const viaEndpoint = await withToken(aliceToken, 'POST', '/api/v1/mfa/step-up', { totp: code });
    expect(viaEndpoint.statusCode).toBe(400);
    expect((viaEndpoint.json() as { hint: string }).hint).toMatch(/X-Lapse-MFA/);

    expect((await withToken(aliceToken, 'GET', '/api/v1/mfa', undefined, { 'x-lapse-mfa': 'totp 12' })).statusCode).toBe(400);
    const wrongHeader = await withToken(aliceToken, 'GET', '/api/v1/mfa', undefined, { 'x-lapse-mfa': `totp ${code === '000000' ? '111111' : '000000'}` });
    expect(wrongHeader.json()).toMatchObject({ code: 'mfa_failed' });

    const withHeader = await withToken(aliceToken, 'GET', '/api/v1/mfa', undefined, { 'x-lapse-mfa': `totp ${code}` });
    expect(withHeader.statusCode).toBe(200);
    expect((withHeader.json() as { mfaAt: string | null }).mfaAt).not.toBeNull();
    // For that request only: the next one has no MFA, and the code is spent.
    expect((await withToken(aliceToken, 'GET', '/api/v1/mfa')).json()).toMatchObject({ mfaAt: null });
    const again = await withToken(aliceToken, 'GET', '/api/v1/mfa', undefined, { 'x-lapse-mfa': `totp ${code}` });
    expect(again.json()).toMatchObject({ code: 'mfa_failed' });
  });

  it('asks for a step-up where a policy needs MFA to request or to approve, and accepts it from a session or X-Lapse-MFA', async () => {
    const ask = { target: 'flaky', entitlement: 'readonly', duration: '30m', reason: 'mfa end to end' };
    const refused = await withToken(aliceToken, 'POST', '/api/v1/requests', ask);
    expect(refused.statusCode).toBe(401);
    expect(refused.json()).toMatchObject({
      code: 'mfa_step_up_required',
      stepUp: { factors: ['totp'], endpoint: '/api/v1/mfa/step-up', header: 'X-Lapse-MFA: totp <code>' },
    });
    expect((refused.json() as { hint: string }).hint).toMatch(/X-Lapse-MFA: totp <code>/);
    const viaHeader = await withToken(aliceToken, 'POST', '/api/v1/requests', ask, { 'x-lapse-mfa': `totp ${await laterCode('alice')}` });
    expect(viaHeader.statusCode).toBe(201);
    expect(viaHeader.json()).toMatchObject({ request: { status: 'approved' } });

    const session = await login('alice');
    expect((await call(session, 'POST', '/api/v1/requests', ask)).json()).toMatchObject({ code: 'mfa_step_up_required' });
    expect((await call(session, 'POST', '/api/v1/mfa/step-up', { totp: await laterCode('alice') })).statusCode).toBe(200);
    expect((await call(session, 'POST', '/api/v1/requests', ask)).statusCode).toBe(201);

    // Approving at a stage that needs MFA (bob enrolled his authenticator app above).
    const pending = await call(session, 'POST', '/api/v1/requests', { target: 'prod-db', entitlement: 'readonly', duration: '30m', reason: 'needs a lead' });
    const requestId = (pending.json() as { request: { id: string; status: string } }).request.id;
    expect((pending.json() as { request: { status: string } }).request.status).toBe('pending');
    const bob = await login('bob');
    const approve = (headers: Record<string, string> = {}) => call(bob, 'POST', `/api/v1/requests/${requestId}/reviews`, { decision: 'approve' }, headers);
    const stale = await approve();
    expect(stale.statusCode).toBe(401);
    expect(stale.json()).toMatchObject({ code: 'mfa_step_up_required', stepUp: { factors: ['totp'] } });
    const approved = await approve({ 'x-lapse-mfa': `totp ${await laterCode('bob')}` });
    expect(approved.statusCode).toBe(200);
    expect(approved.json()).toMatchObject({ effect: 'approved' });
  });

  it("adds the caller's factors to the engine's step-up refusal (a policy's MFA freshness)", async () => {
    const error = await t.engine
      .submit({ principal: alice, target: 'flaky', entitlement: 'readonly', durationMs: 60_000, reason: 'needs mfa' })
      .catch((e: unknown) => e);
    expect(isLapseError(error, 'mfa_step_up_required')).toBe(true);
    const request = {} as Parameters<typeof rememberCaller>[0];
    rememberCaller(request, { principal: alice, scopes: ['request'], via: 'token', mfaAt: null });
    const guided = await withStepUpGuidance(authFor(t.engine), request, error);
    expect(isLapseError(guided, 'mfa_step_up_required')).toBe(true);
    expect((guided as { details: Record<string, unknown> }).details).toMatchObject({ stepUp: { factors: ['totp'], header: 'X-Lapse-MFA: totp <code>' } });
    expect((guided as { details: { hint: string } }).details.hint).toMatch(/step-up/);
  });

  it('requires a fresh step-up to add or remove factors once one exists, and removes only the caller’s own', async () => {
    const session = await login('bob');
    const refused = await call(session, 'POST', '/api/v1/mfa/totp');
    expect(refused.json()).toMatchObject({ code: 'mfa_step_up_required', stepUp: { factors: ['totp'] } });
    expect((await call(session, 'DELETE', '/api/v1/mfa/passkeys/pky_00000000000000000000000000')).json()).toMatchObject({ code: 'mfa_step_up_required' });
    expect((await call(session, 'POST', '/api/v1/mfa/step-up', { totp: await laterCode('bob') })).statusCode).toBe(200);
    const notTheirs = await call(session, 'DELETE', '/api/v1/mfa/passkeys/pky_00000000000000000000000000');
    expect(notTheirs.statusCode).toBe(404);
    expect(await countAudit(store(), 'auth.mfa_passkey_remove_refused')).toBeGreaterThanOrEqual(1);
    expect((await call(session, 'DELETE', '/api/v1/mfa/totp')).statusCode).toBe(204);
    expect((await call(session, 'GET', '/api/v1/mfa')).json()).toMatchObject({ factors: [], totp: null });
    // Alice's factor is untouched.
    expect((await withToken(aliceToken, 'GET', '/api/v1/mfa')).json()).toMatchObject({ factors: ['totp'] });
  });

  it('locks out after repeated failures (429, audited), even for the right code', async () => {
    const session = await login('carol');
    await enrollTotp('carol', session);
    const right = [nextCode('carol', -1), nextCode('carol', 0), nextCode('carol', 1), nextCode('carol', 2)];
    const wrong = ['000000', '111111', '222222', '333333'].find((c) => !right.includes(c))!;
    const statuses: number[] = [];
    for (let i = 0; i < 10; i++) statuses.push((await call(session, 'POST', '/api/v1/mfa/step-up', { totp: wrong })).statusCode);
    expect(statuses).toEqual([401, 401, 401, 401, 401, 401, 401, 401, 401, 429]);
    const locked = await call(session, 'POST', '/api/v1/mfa/step-up', { totp: nextCode('carol', 1) });
    expect(locked.statusCode).toBe(429);
    expect(locked.json()).toMatchObject({ code: 'rate_limited' });
    expect(await countAudit(store(), 'auth.mfa_locked')).toBeGreaterThanOrEqual(1);
  });

  it('asks for a fresh second factor to create an API token once one is enrolled (session or token), and stores nothing before', async () => {
    const dave = await createLocalUser(store(), 'dave', ['sre']);
    const daveToken = (await issueApiToken(store().db, { userId: dave.id, name: 'cli', scopes: ['read'], expiresInMs: 3_600_000 }, new Date())).token;
    const mint = { name: 'automation', scopes: ['read'], expiresIn: '30m' };
    // No factor yet: nothing to ask for.
    expect((await call(await login('dave'), 'POST', '/api/v1/tokens', { ...mint, name: 'before mfa' })).statusCode).toBe(201);
    await enrollTotp('dave', await login('dave'));
    const tokens = async () =>
      Number((await sql<{ n: string }>`SELECT count(*) AS n FROM api_tokens WHERE user_id = ${dave.id}`.execute(store().db)).rows[0]!.n);
    const before = await tokens();

    const session = await login('dave');
    const refused = await call(session, 'POST', '/api/v1/tokens', mint);
    expect(refused.statusCode).toBe(401);
    expect(refused.json()).toMatchObject({ code: 'mfa_step_up_required', stepUp: { factors: ['totp'] } });
    const viaToken = await withToken(daveToken, 'POST', '/api/v1/tokens', mint);
    expect(viaToken.json()).toMatchObject({ code: 'mfa_step_up_required' });
    expect(await tokens()).toBe(before);

    expect((await call(session, 'POST', '/api/v1/mfa/step-up', { totp: nextCode('dave') })).statusCode).toBe(200);
    expect((await call(session, 'POST', '/api/v1/tokens', mint)).statusCode).toBe(201);
    const stepped = await withToken(daveToken, 'POST', '/api/v1/tokens', { ...mint, expiresIn: '10m' }, { 'x-lapse-mfa': `totp ${await laterCode('dave')}` });
    expect(stepped.statusCode, stepped.body).toBe(201);
    expect(await tokens()).toBe(before + 2);
  });

  it('publishes every MFA route, and the stepUp problem member, in the OpenAPI document', async () => {
    const doc = (await app.inject({ method: 'GET', url: '/api/openapi.json' })).json() as { paths: Record<string, object>; components?: unknown };
    const paths = Object.keys(doc.paths).filter((p) => p.startsWith('/api/v1/mfa'));
    expect(paths.sort()).toEqual([
      '/api/v1/mfa',
      '/api/v1/mfa/passkeys',
      '/api/v1/mfa/passkeys/authentication-options',
      '/api/v1/mfa/passkeys/registration-options',
      '/api/v1/mfa/passkeys/{id}',
      '/api/v1/mfa/step-up',
      '/api/v1/mfa/totp',
      '/api/v1/mfa/totp/confirm',
    ]);
    expect(JSON.stringify(doc.paths['/api/v1/mfa/step-up'])).toContain('stepUp');
  });
});
