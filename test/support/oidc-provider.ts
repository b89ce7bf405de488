import { createPrivateKey, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import Provider from 'oidc-provider';

export interface TestOidcUser {
  readonly groups: string[];
  /** Defaults to the user's key. */
  readonly preferredUsername?: string;
}

/** Changes the next ID token the provider issues: claims to re-sign with the provider's key, or 'tamper' to alter it without. */
export type IdTokenMutation = ((claims: Record<string, unknown>) => Record<string, unknown>) | 'tamper';

export interface TestOidcProvider {
  readonly issuer: string;
  readonly clientId: string;
  readonly clientSecret: string;
  /** Query strings of the authorization requests the provider received (to check PKCE, nonce...). */
  readonly authorizationRequests: URLSearchParams[];
  /** Applies to the next token response only. */
  mutateNextIdToken(mutation: IdTokenMutation): void;
  close(): Promise<void>;
}

export interface StartOidcProviderOptions {
  readonly users: Record<string, TestOidcUser>;
  /** Extra client registrations; the default client (confidential, loopback redirect on any port) is always there. */
  readonly clients?: Record<string, unknown>[];
}

function base64url(value: object): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

function resign(idToken: string, mutation: IdTokenMutation, key: KeyObject): string {
  const [header, payload, signature] = idToken.split('.') as [string, string, string];
  const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Record<string, unknown>;
  if (mutation === 'tamper') {
    // a changed payload under the original signature
    return `${header}.${base64url({ ...claims, groups: ['admins'], preferred_username: 'root' })}.${signature}`;
  }
  const body = `${header}.${base64url(mutation(claims))}`;
  return `${body}.${sign('sha256', Buffer.from(body), key).toString('base64url')}`;
}

/**
 * A real OpenID provider (panva's oidc-provider) on 127.0.0.1 at a random port, for tests. Its
 * interaction (login + consent) is completed automatically for the user named by `login_hint`,
 * so a browser-less client can walk the whole redirect chain. Signing key is the test's own RSA
 * key, so a test can re-sign a deliberately wrong ID token (expired, other issuer or audience).
 */
export async function startOidcProvider(options: StartOidcProviderOptions): Promise<TestOidcProvider> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = { ...privateKey.export({ format: 'jwk' }), kid: 'test-key', alg: 'RS256', use: 'sig' };
  const signingKey = createPrivateKey({ key: privateKey.export({ format: 'jwk' }), format: 'jwk' });
  const clientId = 'lapse';
  const clientSecret = randomBytes(24).toString('base64url');
  const users = options.users;

  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: clientId,
        client_secret: clientSecret,
        // NB. A native client may use any port on a loopback redirect URI (RFC 8252 §7.3), so the
        // Lapse server under test can listen on a random port.
        application_type: 'native',
        redirect_uris: ['http://127.0.0.1/auth/oidc/callback'],
        post_logout_redirect_uris: ['http://127.0.0.1/'],
        grant_types: ['authorization_code'],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_basic',
      },
      ...(options.clients ?? []),
    ],
    jwks: { keys: [jwk] },
    cookies: { keys: [randomBytes(16).toString('hex')] },
    pkce: { required: () => true },
    claims: { openid: ['sub'], profile: ['preferred_username', 'name', 'groups'], email: ['email', 'email_verified'] },
    features: { devInteractions: { enabled: false }, rpInitiatedLogout: { enabled: true } },
    interactions: { url: (_ctx: unknown, interaction: { uid: string }) => `/interaction/${interaction.uid}` },
    findAccount: (_ctx: unknown, id: string) => {
      const user = users[id];
      if (!user) return undefined;
      return {
        accountId: id,
        claims: () => ({
          sub: id,
          preferred_username: user.preferredUsername ?? id,
          name: id,
          groups: user.groups,
          email: `${id}@example.test`,
          email_verified: true,
        }),
      };
    },
  });

  const authorizationRequests: URLSearchParams[] = [];
  let mutation: IdTokenMutation | undefined;
  provider.use(async (ctx, next) => {
    if (ctx.path === '/auth') authorizationRequests.push(new URLSearchParams(ctx.query));
    if (ctx.path.startsWith('/interaction/')) {
      const details = await provider.interactionDetails(ctx.req, ctx.res);
      if (details.prompt.name === 'login') {
        const login = details.params.login_hint;
        if (!login || !users[login]) {
          ctx.status = 400;
          ctx.body = `test provider: pass login_hint naming one of ${Object.keys(users).join(', ')}`;
          return;
        }
        ctx.redirect(await provider.interactionResult(ctx.req, ctx.res, { login: { accountId: login } }, { mergeWithLastSubmission: false }));
        return;
      }
      const grant = details.grantId
        ? await provider.Grant.find(details.grantId)
        : new provider.Grant({ accountId: details.session!.accountId, clientId: details.params.client_id! });
      const missing = details.prompt.details as { missingOIDCScope?: string[]; missingOIDCClaims?: string[]; missingResourceScopes?: Record<string, string[]> };
      if (missing.missingOIDCScope) grant!.addOIDCScope(missing.missingOIDCScope.join(' '));
      if (missing.missingOIDCClaims) grant!.addOIDCClaims(missing.missingOIDCClaims);
      for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes ?? {})) grant!.addResourceScope(indicator, scopes.join(' '));
      const grantId = await grant!.save();
      ctx.redirect(await provider.interactionResult(ctx.req, ctx.res, { consent: { grantId } }, { mergeWithLastSubmission: true }));
      return;
    }
    await next();
    if (ctx.path === '/token' && mutation && ctx.body && typeof ctx.body === 'object' && 'id_token' in ctx.body) {
      const body = ctx.body as { id_token: string };
      body.id_token = resign(body.id_token, mutation, signingKey);
      mutation = undefined;
    }
  });
  server.on('request', provider.callback());

  return {
    issuer,
    clientId,
    clientSecret,
    authorizationRequests,
    mutateNextIdToken: (next) => {
      mutation = next;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
