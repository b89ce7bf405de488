import * as client from 'openid-client';
import { isLoopbackUrl } from '../config/auth.js';
import type { OidcConfig } from '../config/types.js';
import { LapseError } from '../domain/errors.js';
import { insertOidcFlow, takeOidcFlow, type Executor } from '../store/index.js';
import { auditedChange } from './audited.js';
import type { SignInUser } from './local-login.js';
import { groupsFromClaim, upsertOidcUser } from './oidc-users.js';
import { hashSecret, newSecret, SECRET_SHAPE } from './secrets.js';

/** A sign-in in flight lasts this long: enough to type a password and pass MFA at the IdP. */
const FLOW_TTL_MS = 10 * 60_000;

/** A `lapse login` waiting on its loopback listener for the outcome of this sign-in. */
export interface CliLoginRequest {
  readonly port: number;
  readonly state: string;
  readonly codeChallenge: string;
}

export interface StartedFlow {
  /** Where to send the browser (the IdP's authorization endpoint). */
  readonly url: string;
  /** Goes in a cookie; only its hash is stored, so the callback must come from the same browser. */
  readonly flowSecret: string;
}

export interface CompletedFlow {
  readonly user: SignInUser & { created: boolean };
  readonly returnTo: string;
  readonly cli: CliLoginRequest | null;
}

/**
 * Single sign-on with an OpenID provider: authorization code flow with PKCE (S256), state and
 * nonce, through `openid-client`, which checks the ID token's signature, issuer, audience, expiry
 * and nonce. Discovery happens on first use and is cached (retried after a failure).
 */
export class OidcSignIn {
  private discovered: Promise<client.Configuration> | undefined;

  constructor(
    readonly settings: OidcConfig,
    private readonly logger?: { warn(details: object, message: string): void },
  ) {
    if (settings.allowInsecureHttp) {
      logger?.warn(
        { issuer: settings.issuer },
        'auth.oidc.allowInsecureHttp is on: the identity provider is reached over plain http (loopback only); never use this in production',
      );
    }
  }

  private configuration(): Promise<client.Configuration> {
    this.discovered ??= this.discover().catch((error: unknown) => {
      this.discovered = undefined;
      throw error;
    });
    return this.discovered;
  }

  private async discover(): Promise<client.Configuration> {
    const { issuer, clientId, clientSecret, allowInsecureHttp } = this.settings;
    // NB. Plain http only through the explicit, loopback-only opt-in (the config loader refuses it elsewhere).
    const insecure = allowInsecureHttp && isLoopbackUrl(issuer);
    try {
      return await client.discovery(new URL(issuer), clientId, undefined, clientSecret ? client.ClientSecretBasic(clientSecret) : client.None(), {
        timeout: 10,
        // NB. By default openid-client trusts an ID token from the token endpoint on the strength
        // of TLS alone (OIDC Core 3.1.3.7) and skips its signature; we verify it anyway, so a
        // proxy or a misbehaving endpoint cannot hand us altered claims (groups decide access).
        execute: insecure ? [client.allowInsecureRequests, client.enableNonRepudiationChecks] : [client.enableNonRepudiationChecks],
      });
    } catch (error) {
      throw new LapseError('idp_unavailable', `cannot reach the identity provider at ${issuer}: ${(error as Error).message}`, { where: 'auth.oidc.issuer' });
    }
  }

  /** Starts a sign-in: stores state, nonce and the PKCE verifier, and gives the IdP URL. */
  async begin(
    db: Executor,
    input: { redirectUri: string; returnTo: string; cli?: CliLoginRequest | undefined; loginHint?: string | undefined },
  ): Promise<StartedFlow> {
    const configuration = await this.configuration();
    const flowSecret = newSecret();
    const state = client.randomState();
    const nonce = client.randomNonce();
    const codeVerifier = client.randomPKCECodeVerifier();
    const codeChallenge = await client.calculatePKCECodeChallenge(codeVerifier);
    await auditedChange(db, async (tx, now) => {
      await insertOidcFlow(
        tx,
        {
          id_hash: hashSecret(flowSecret),
          state,
          nonce,
          code_verifier: codeVerifier,
          return_to: input.returnTo,
          cli: input.cli ? JSON.stringify(input.cli) : null,
          created_at: now,
          expires_at: new Date(now.getTime() + FLOW_TTL_MS),
        },
        now,
      );
    });
    const url = client.buildAuthorizationUrl(configuration, {
      redirect_uri: input.redirectUri,
      scope: this.settings.scopes.join(' '),
      state,
      nonce,
      code_challenge: codeChallenge,
      code_challenge_method: 'S256',
      ...(input.loginHint ? { login_hint: input.loginHint } : {}),
    });
    return { url: url.href, flowSecret };
  }

  /**
   * Finishes a sign-in at the callback: the flow (single use) must exist for this browser, the
   * state must match, the code is exchanged with the verifier, the ID token is verified, and the
   * user is created or refreshed (groups from the configured claim).
   */
  async complete(db: Executor, input: { flowSecret: string | undefined; callbackUrl: URL; redirectUri: string }): Promise<CompletedFlow> {
    const configuration = await this.configuration();
    if (!input.flowSecret || !SECRET_SHAPE.test(input.flowSecret)) {
      throw new LapseError('unauthenticated', 'this sign-in did not start in this browser, or took too long', {
        hint: 'Start again from the sign-in page.',
        reason: 'no flow cookie',
      });
    }
    const flow = await takeOidcFlow(db, hashSecret(input.flowSecret));
    if (!flow || new Date(flow.expires_at).getTime() < Date.now()) {
      throw new LapseError('unauthenticated', 'this sign-in did not start in this browser, or took too long', {
        hint: 'Start again from the sign-in page.',
        reason: 'unknown or expired flow',
      });
    }
    let tokens: Awaited<ReturnType<typeof client.authorizationCodeGrant>>;
    try {
      tokens = await client.authorizationCodeGrant(
        configuration,
        input.callbackUrl,
        {
          pkceCodeVerifier: flow.code_verifier,
          expectedState: flow.state,
          expectedNonce: flow.nonce,
          idTokenExpected: true,
        },
        { redirect_uri: input.redirectUri },
      );
    } catch (error) {
      // NB. openid-client's message names the failed check (state, nonce, signature, iss, aud,
      // exp); it is about the IdP's response, never contains a secret, and helps an admin.
      const cause = (error as { cause?: { message?: unknown } }).cause;
      const detail = cause instanceof Error ? cause.message : (error as Error).message;
      throw new LapseError('unauthenticated', `the identity provider's answer was not accepted: ${detail}`.slice(0, 500), {
        hint: 'Start again from the sign-in page; if it keeps failing, check auth.oidc (issuer, clientId) and the server clock.',
        reason: (error as { code?: string }).code ?? 'rejected',
      });
    }
    const idClaims = tokens.claims();
    if (!idClaims) throw new LapseError('unauthenticated', 'the identity provider sent no ID token', { reason: 'no id token' });
    let claims: Record<string, unknown> = { ...idClaims };
    const { usernameClaim, groupsClaim } = this.settings;
    // NB. Many IdPs put profile and group claims only in userinfo; ask it when the ID token lacks them.
    if ((claims[usernameClaim] === undefined || claims[groupsClaim] === undefined) && configuration.serverMetadata().userinfo_endpoint) {
      const info = await client.fetchUserInfo(configuration, tokens.access_token, idClaims.sub);
      claims = { ...info, ...claims };
    }
    const username = typeof claims[usernameClaim] === 'string' ? (claims[usernameClaim] as string) : idClaims.sub;
    const groups = groupsFromClaim(claims[groupsClaim]);
    // Where notifications go: the IdP's address, unless it says the address is unverified.
    const email = typeof claims.email === 'string' && claims.email_verified !== false ? claims.email : undefined;
    const user = await auditedChange(db, (tx, now) => upsertOidcUser(tx, { issuer: idClaims.iss, subject: idClaims.sub, username, groups, email }, now));
    return { user, returnTo: flow.return_to, cli: flow.cli };
  }

  /** RP-initiated logout at the IdP, when it offers end_session_endpoint. */
  async logoutUrl(postLogoutRedirectUri: string | undefined): Promise<string | null> {
    const configuration = await this.configuration().catch(() => undefined);
    if (!configuration?.serverMetadata().end_session_endpoint) return null;
    return client.buildEndSessionUrl(configuration, {
      client_id: this.settings.clientId,
      ...(postLogoutRedirectUri ? { post_logout_redirect_uri: postLogoutRedirectUri } : {}),
    }).href;
  }
}
