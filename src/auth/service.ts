import type { AuthConfig, EffectiveConfig } from '../config/types.js';
import { LapseError } from '../domain/errors.js';
import type { Executor } from '../store/index.js';
import { findEnabledUserById, findTokenOwner, getUserByName, listTokensOf, revokeTokensOfUser } from './accounts.js';
import { auditedChange } from './audited.js';
import { issueCliLoginCode, redeemCliLoginCode } from './cli-login.js';
import { checkLocalPassword, type PasswordAttempt, type SignInUser } from './local-login.js';
import { enrolledFactors, findMfaUser, type MfaContext, type RelyingParty, type SecretSealer } from './mfa/index.js';
import type { CliLoginRequest, OidcSignIn } from './oidc.js';
import { sessionScopes } from './roles.js';
import {
  createSession,
  endAllSessions,
  endSession,
  findSession,
  markSessionMfa,
  touchSession,
  type ActiveSession,
  type NewSession,
  type SignInMethod,
} from './sessions.js';
import { completeSetup, createSetupToken, needsFirstAdmin } from './setup.js';
import { authenticateToken, issueApiToken, revokeApiToken, type IssuedToken } from './tokens.js';
import { authenticateScimToken } from './scim-tokens.js';

/**
 * Sign-in, sessions, API tokens, MFA and first start, bound to the database once where Lapse is
 * composed (`lapse serve`, the tests). The API calls these use-cases and never holds a database
 * handle; each state change commits with its audit event in one unit of work.
 */
export class AuthService {
  constructor(
    private readonly db: Executor,
    private readonly sealer: SecretSealer,
  ) {}

  // Who is calling

  authenticateToken = (presented: string) => authenticateToken(this.db, presented);
  /** A SCIM bearer token (only the SCIM routes ask); null for anything else. */
  authenticateScimToken = (presented: string) => authenticateScimToken(this.db, presented);
  findSession = (secret: string, timeouts: AuthConfig['sessions']) => findSession(this.db, secret, timeouts);
  touchSession = (session: ActiveSession, timeouts: AuthConfig['sessions']) => touchSession(this.db, session, timeouts);
  userByName = (name: string) => getUserByName(this.db, name);

  // Signing in

  checkLocalPassword = (attempt: PasswordAttempt, limits: AuthConfig['loginLimits']) => checkLocalPassword(this.db, attempt, limits);

  /** A new session for a signed-in user (never a reused one), audited as `auth.login`. */
  startSession(
    user: SignInUser,
    method: SignInMethod,
    client: { ip: string; userAgent: string | undefined },
    timeouts: AuthConfig['sessions'],
    data = {},
  ): Promise<NewSession> {
    return auditedChange(this.db, async (tx, now, audit) => {
      const created = await createSession(tx, { userId: user.id, method, ip: client.ip, userAgent: client.userAgent }, timeouts, now);
      audit({ action: 'auth.login', actor: user.name, subject: created.id, data: { method, ip: client.ip, ...data } });
      return created;
    });
  }

  /** The one-time code a `lapse login` browser sign-in ends with, audited as `auth.cli_login`. */
  issueCliLoginCode(user: SignInUser, cli: CliLoginRequest, method: string, ip: string): Promise<string> {
    return auditedChange(this.db, async (tx, now, audit) => {
      const code = await issueCliLoginCode(tx, { userId: user.id, codeChallenge: cli.codeChallenge }, now);
      audit({ action: 'auth.cli_login', actor: user.name, data: { method, ip, port: cli.port } });
      return code;
    });
  }

  /** Trades a `lapse login` code (with its PKCE verifier) for a token with the user's session scopes. */
  async redeemCliLoginCode(input: { code: string; codeVerifier: string; name: string }, roles: EffectiveConfig['roles'], lifetimeMs: number) {
    // NB. Redeemed in its own statement, so a code is spent even when the verifier is wrong.
    const userId = await redeemCliLoginCode(this.db, input);
    return auditedChange(this.db, async (tx, now, audit) => {
      const user = await findEnabledUserById(tx, userId);
      if (!user) throw new LapseError('unauthenticated', 'this account is disabled');
      const scopes = sessionScopes({ id: user.name, kind: user.kind, groups: user.groups }, roles);
      const value = await issueApiToken(tx, { userId, name: input.name, scopes, expiresInMs: lifetimeMs, issuedBy: user.name }, now);
      audit({
        action: 'token.created',
        actor: user.name,
        subject: value.id,
        data: { user: user.name, scopes, via: 'lapse login', expiresAt: value.expiresAt?.toISOString() ?? null },
      });
      return { ...value, user: user.name, scopes };
    });
  }

  beginOidc = (signIn: OidcSignIn, input: Parameters<OidcSignIn['begin']>[1]) => signIn.begin(this.db, input);
  completeOidc = (signIn: OidcSignIn, input: Parameters<OidcSignIn['complete']>[1]) => signIn.complete(this.db, input);

  // Signing out

  endSession(sessionId: string, actor: string): Promise<void> {
    return auditedChange(this.db, async (tx, _now, audit) => {
      await endSession(tx, sessionId);
      audit({ action: 'auth.logout', actor, subject: sessionId });
    });
  }

  /** Every session of the user, and with `revokeTokens` every token, audited as `auth.logout_all`. */
  endEverywhere(userId: string, actor: string, revokeTokens: boolean): Promise<{ sessionsEnded: number; tokensRevoked: number }> {
    return auditedChange(this.db, async (tx, _now, audit) => {
      const sessionsEnded = await endAllSessions(tx, userId);
      const tokensRevoked = revokeTokens ? await revokeTokensOfUser(tx, userId) : 0;
      // NB. Audit data keys may not mention tokens (they are redacted as secrets).
      audit({ action: 'auth.logout_all', actor, subject: userId, data: { sessionsEnded, apiAccessRevoked: tokensRevoked } });
      return { sessionsEnded, tokensRevoked };
    });
  }

  // API tokens

  listTokensOf = (userName: string) => listTokensOf(this.db, userName);
  findTokenOwner = (tokenId: string) => findTokenOwner(this.db, tokenId);

  /**
   * Revokes a token and every token minted with it (a stolen token's offspring die with it);
   * audited as `token.revoked`, naming the others, when anything changed.
   */
  revokeToken(tokenId: string, actor: string, data: Record<string, unknown>): Promise<boolean> {
    return auditedChange(this.db, async (tx, _now, audit) => {
      const { revoked, alsoRevoked } = await revokeApiToken(tx, tokenId);
      if (revoked || alsoRevoked.length > 0) audit({ action: 'token.revoked', actor, subject: tokenId, data: { ...data, alsoRevoked } });
      return revoked;
    });
  }

  /** Issues a token the route has already judged allowed; audited as `token.created` with `audit` data. */
  issueToken(
    input: { userId: string; name: string; scopes: readonly string[]; expiresInMs: number | null; issuedBy: string; notAfter?: Date; mintedBy?: string },
    actor: string,
    data: (issued: IssuedToken) => Record<string, unknown>,
  ): Promise<IssuedToken> {
    return auditedChange(this.db, async (tx, now, audit) => {
      const issued = await issueApiToken(tx, input, now);
      audit({ action: 'token.created', actor, subject: issued.id, data: data(issued) });
      return issued;
    });
  }

  // Second factors

  mfaContext(logger: MfaContext['logger'], relyingParty: RelyingParty | undefined): MfaContext {
    return { db: this.db, sealer: this.sealer, logger, relyingParty };
  }

  enrolledFactors = (principalId: string) => enrolledFactors(this.db, principalId);
  findMfaUser = (principalId: string) => findMfaUser(this.db, principalId);
  markSessionMfa = (sessionId: string, at: Date) => markSessionMfa(this.db, sessionId, at);

  // First start

  needsFirstAdmin = (config: Pick<EffectiveConfig, 'auth' | 'roles'>) => needsFirstAdmin(this.db, config);

  /** A one-time setup link's token (24 hours), audited as `setup.link_created`. */
  createSetupLink(): Promise<{ token: string; expiresAt: Date }> {
    return auditedChange(this.db, async (tx, now, audit) => {
      const created = await createSetupToken(tx, now);
      audit({ action: 'setup.link_created', actor: 'system', data: { expiresAt: created.expiresAt.toISOString() } });
      return created;
    });
  }

  /** Creates the first admin with the setup token, audited as `setup.completed`. */
  completeSetup(config: Pick<EffectiveConfig, 'auth' | 'roles'>, input: Parameters<typeof completeSetup>[2], ip: string): Promise<SignInUser> {
    return auditedChange(this.db, async (tx, now, audit) => {
      const created = await completeSetup(tx, config, input, now);
      audit({ action: 'setup.completed', actor: created.name, subject: created.id, data: { name: created.name, groups: created.groups, ip } });
      return created;
    });
  }
}
