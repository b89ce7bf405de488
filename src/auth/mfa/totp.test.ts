import { randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import { authenticator } from 'otplib';
import { beforeAll, describe, expect, it } from 'vitest';
import { describeEachStore } from '../../../test/support/stores.js';
import { isLapseError } from '../../domain/errors.js';
import { createSealer } from '../../secrets/index.js';
import { createUser } from '../principals.js';
import { MFA_MAX_FAILURES } from './attempts.js';
import type { MfaContext, MfaUser } from './context.js';
import { enrolledFactors } from './factors.js';
import { confirmTotp, enrollTotp, removeTotp, totpCodeAt, totpStatus, totpStepOf, verifyTotp } from './totp.js';

describe('TOTP codes at controlled times (RFC 6238, SHA-1, 6 digits, 30 s)', () => {
  const secret = authenticator.generateSecret(20);
  const t = new Date('2030-01-01T12:00:10Z');
  const step = Math.floor(t.getTime() / 30_000);
  const codeAt = (offsetSeconds: number) => authenticator.clone({ epoch: t.getTime() + offsetSeconds * 1000, step: 30 }).generate(secret);

  it('accepts the current code and one step either side, naming the step each belongs to', () => {
    expect(totpStepOf(secret, codeAt(0), t)).toBe(step);
    expect(totpStepOf(secret, codeAt(-30), t)).toBe(step - 1);
    expect(totpStepOf(secret, codeAt(30), t)).toBe(step + 1);
  });

  it('refuses codes two steps away, from another secret, and anything not six digits', () => {
    expect(totpStepOf(secret, codeAt(-60), t)).toBeNull();
    expect(totpStepOf(secret, codeAt(60), t)).toBeNull();
    const other = authenticator.clone({ epoch: t.getTime(), step: 30 }).generate(authenticator.generateSecret(20));
    if (other !== codeAt(0) && other !== codeAt(-30) && other !== codeAt(30)) expect(totpStepOf(secret, other, t)).toBeNull();
    for (const bad of ['', '12345', '1234567', 'abcdef', ' 123456', `${codeAt(0)}\n`]) expect(totpStepOf(secret, bad, t)).toBeNull();
  });

  it('matches the RFC 6238 SHA-1 test vector', () => {
    // RFC 6238 appendix B: secret "12345678901234567890", T = 59 s -> 94287082 (8 digits); the
    // 6-digit code is its last six digits.
    const rfcSecret = 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ'; // base32 of the ASCII key
    expect(totpCodeAt(rfcSecret, new Date(59_000))).toBe('287082');
    expect(totpCodeAt(rfcSecret, new Date(1_111_111_109_000))).toBe('081804');
  });
});

describeEachStore('TOTP factors', ({ store }) => {
  const logs: string[] = [];
  let context: MfaContext;
  beforeAll(() => {
    context = {
      db: store().db,
      sealer: createSealer(randomBytes(32)),
      logger: { warn: (fields, message) => logs.push(`${JSON.stringify(fields)} ${message}`) },
      relyingParty: undefined,
    };
  });
  const newUser = async (): Promise<MfaUser> => createUser(store().db, { name: `u${randomBytes(4).toString('hex')}`, groups: [] }, new Date());
  const audit = async (actor: string) =>
    (await store().db.selectFrom('audit_events').select('payload').orderBy('seq').execute())
      .map((r) => JSON.parse(r.payload) as { action: string; actor: string; data?: Record<string, unknown> })
      .filter((e) => e.actor === actor);
  const enrolled = async (user: MfaUser) => {
    const enrollment = await enrollTotp(context, user, 'Lapse');
    await confirmTotp(context, user, totpCodeAt(enrollment.secret, new Date(Date.now() - 30_000)));
    return enrollment.secret;
  };

  it('enrolls pending, with the secret sealed at rest and an otpauth URI, and activates on a first code', async () => {
    const user = await newUser();
    const enrollment = await enrollTotp(context, user, 'Lapse');
    expect(enrollment.uri).toMatch(
      new RegExp(`^otpauth://totp/Lapse:${user.name}\\?secret=${enrollment.secret}&period=30&digits=6&algorithm=SHA1&issuer=Lapse$`),
    );
    const row = await store().db.selectFrom('mfa_totp').selectAll().where('user_id', '=', user.id).executeTakeFirstOrThrow();
    expect(row.status).toBe('pending');
    expect(row.secret_sealed).not.toContain(enrollment.secret);
    expect(() => context.sealer.open(row.secret_sealed, 'totp:usr_someoneelse')).toThrow();
    expect(await enrolledFactors(store().db, user.name)).toEqual([]);

    // A pending factor does not verify step-ups.
    await expect(verifyTotp(context, user, totpCodeAt(enrollment.secret, new Date()))).rejects.toSatisfy((e) => isLapseError(e, 'mfa_failed'));
    await expect(confirmTotp(context, user, '000000' === totpCodeAt(enrollment.secret, new Date()) ? '111111' : '000000')).rejects.toSatisfy((e) =>
      isLapseError(e, 'mfa_failed'),
    );
    const proof = await confirmTotp(context, user, totpCodeAt(enrollment.secret, new Date()));
    expect(proof.factor).toBe('totp');
    expect((await totpStatus(context, user))?.status).toBe('active');
    expect(await enrolledFactors(store().db, user.name)).toEqual(['totp']);
    expect((await audit(user.name)).map((e) => e.action)).toEqual(['auth.mfa_totp_enrolling', 'auth.mfa_failed', 'auth.mfa_failed', 'auth.mfa_totp_enrolled']);
  });

  it('accepts each code once: a replay, or an older code after a newer one, is refused, logged without the code, and audited with severity', async () => {
    const user = await newUser();
    const secret = await enrolled(user);
    const now = Date.now();
    const current = totpCodeAt(secret, new Date(now + 30_000));
    await verifyTotp(context, user, current);
    logs.length = 0;
    const replay = await verifyTotp(context, user, current).catch((e: unknown) => e);
    expect(isLapseError(replay, 'mfa_failed')).toBe(true);
    expect((replay as Error).message).toMatch(/already used/);
    // The code from the step before the accepted one is inside the window but not newer: refused.
    const older = totpCodeAt(secret, new Date(now));
    if (older !== current) await expect(verifyTotp(context, user, older)).rejects.toSatisfy((e) => isLapseError(e, 'mfa_failed'));
    expect(logs.length).toBeGreaterThanOrEqual(1);
    expect(logs.join('\n')).toMatch(/auth\.mfa_replay/);
    expect(logs.join('\n')).not.toContain(current);
    const replays = (await audit(user.name)).filter((e) => e.action === 'auth.mfa_replay');
    expect(replays.length).toBeGreaterThanOrEqual(1);
    expect(replays[0]!.data).toMatchObject({ factor: 'totp', reason: 'replay', severity: 'high' });
    expect(JSON.stringify(replays)).not.toContain(current);
  });

  it('lets exactly one of several concurrent uses of one code through', async () => {
    const user = await newUser();
    const secret = await enrolled(user);
    const code = totpCodeAt(secret, new Date(Date.now() + 30_000));
    const outcomes = await Promise.allSettled(Array.from({ length: 5 }, () => verifyTotp(context, user, code)));
    expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(1);
    for (const o of outcomes) if (o.status === 'rejected') expect(isLapseError(o.reason, 'mfa_failed')).toBe(true);
  });

  it(`locks a user out after ${MFA_MAX_FAILURES} failures in 15 minutes (audited), even for a right code, until the window passes`, async () => {
    const user = await newUser();
    const secret = await enrolled(user);
    const right = totpCodeAt(secret, new Date(Date.now() + 30_000));
    const wrong = ['000000', '111111'].find(
      (c) => c !== right && c !== totpCodeAt(secret, new Date()) && c !== totpCodeAt(secret, new Date(Date.now() - 30_000)),
    )!;
    for (let i = 1; i < MFA_MAX_FAILURES; i++) await expect(verifyTotp(context, user, wrong)).rejects.toSatisfy((e) => isLapseError(e, 'mfa_failed'));
    await expect(verifyTotp(context, user, wrong)).rejects.toSatisfy((e) => isLapseError(e, 'rate_limited'));
    await expect(verifyTotp(context, user, right)).rejects.toSatisfy((e) => isLapseError(e, 'rate_limited'));
    const events = await audit(user.name);
    expect(events.filter((e) => e.action === 'auth.mfa_locked')).toHaveLength(1);
    expect(events.at(-1)).toMatchObject({ action: 'auth.mfa_refused', data: { reason: 'locked_out', severity: 'high' } });
    // Fifteen minutes later the failures no longer count.
    await sql`UPDATE mfa_failures SET at = at - interval '16 minutes' WHERE user_id = ${user.id}`.execute(store().db);
    await expect(verifyTotp(context, user, right)).resolves.toMatchObject({ factor: 'totp' });
    expect(await store().db.selectFrom('mfa_failures').select('id').where('user_id', '=', user.id).execute()).toEqual([]);
  });

  it("checks codes against the user's own secret only", async () => {
    const alice = await newUser();
    const bob = await newUser();
    const aliceSecret = await enrolled(alice);
    await enrolled(bob);
    const code = totpCodeAt(aliceSecret, new Date(Date.now() + 30_000));
    await expect(verifyTotp(context, bob, code)).rejects.toSatisfy((e) => isLapseError(e, 'mfa_failed'));
    await expect(verifyTotp(context, alice, code)).resolves.toMatchObject({ factor: 'totp' });
  });

  it('refuses a second enrollment while one is active, and enrolls again after removal', async () => {
    const user = await newUser();
    await enrolled(user);
    await expect(enrollTotp(context, user, 'Lapse')).rejects.toSatisfy((e) => isLapseError(e, 'conflict'));
    await removeTotp(context, user);
    expect(await totpStatus(context, user)).toBeNull();
    await expect(removeTotp(context, user)).rejects.toSatisfy((e) => isLapseError(e, 'not_found'));
    const again = await enrollTotp(context, user, 'Lapse');
    const replaced = await enrollTotp(context, user, 'Lapse');
    expect(replaced.secret).not.toBe(again.secret);
    expect((await audit(user.name)).map((e) => e.action)).toContain('auth.mfa_totp_removed');
  });
});
