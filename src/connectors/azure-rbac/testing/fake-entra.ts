import { X509Certificate, createPublicKey, randomBytes, timingSafeEqual, verify, constants } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';

/**
 * A fake Microsoft Entra ID token service for one tenant, speaking the v2.0 endpoints MSAL (and so
 * `@azure/identity`) uses with a custom `authorityHost` and `disableInstanceDiscovery: true`:
 *
 * - `GET /<tenant>/v2.0/.well-known/openid-configuration`: the metadata MSAL reads first.
 * - `POST /<tenant>/oauth2/v2.0/token`: the client-credentials grant, with a client secret or a
 *   certificate-signed client assertion (RS256/PS256, checked against the registered certificate,
 *   its audience, issuer, subject and expiry). Only `<resource>/.default` scopes are accepted.
 * - `GET /common/discovery/instance`: refused and counted, so a test proves instance discovery
 *   is really off (the real one would answer for Microsoft's hosts only).
 *
 * Errors carry Entra's shapes (`error`, `error_description` with an AADSTS code). Tokens are
 * opaque random strings remembered here with their audience and expiry; the ARM fake asks
 * `tokenInfo` to check them. What it cannot prove: real Entra policies (conditional access for
 * workload identities, secret expiry, certificate rollover), managed identity (IMDS) and the
 * exact error text Entra returns.
 */
export interface TokenInfo {
  readonly appId: string;
  readonly audience: string;
  readonly expiresAt: number;
}

interface App {
  readonly secret?: string;
  readonly certificatePem?: string;
}

export class FakeEntra {
  readonly tenantId: string;
  private readonly apps = new Map<string, App>();
  private readonly tokens = new Map<string, TokenInfo>();
  /** Seconds a token lives; tests shorten it to see renewal. */
  tokenLifetimeS = 3600;
  instanceDiscoveryCalls = 0;
  tokensIssued = 0;
  private base = '';

  constructor(tenantId: string) {
    this.tenantId = tenantId;
  }

  /** The authorityHost the connector is configured with (set once the server listens). */
  setBaseUrl(base: string): void {
    this.base = base;
  }

  registerApp(appId: string, app: App): void {
    this.apps.set(appId, app);
  }

  tokenInfo(token: string, now = Date.now()): TokenInfo | 'expired' | undefined {
    const info = this.tokens.get(token);
    if (!info) return undefined;
    return info.expiresAt <= now ? 'expired' : info;
  }

  /** Forgets every issued token (as if they were revoked): the next ARM call sees 401. */
  revokeAllTokens(): void {
    this.tokens.clear();
  }

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', this.base);
    const parts = url.pathname.split('/').filter(Boolean);
    if (parts[0] === 'common' && parts[1] === 'discovery') {
      this.instanceDiscoveryCalls++;
      return send(res, 400, {
        error: 'invalid_instance',
        error_description: 'AADSTS50049: Unknown or invalid instance (this fake refuses instance discovery).',
      });
    }
    if (parts[0] !== this.tenantId) {
      return send(res, 400, {
        error: 'invalid_request',
        error_description: `AADSTS90002: Tenant '${parts[0] ?? ''}' not found. Check to make sure you have the correct tenant ID.`,
      });
    }
    const rest = parts.slice(1).join('/');
    if (req.method === 'GET' && rest === 'v2.0/.well-known/openid-configuration') {
      const root = `${this.base}/${this.tenantId}`;
      return send(res, 200, {
        issuer: `${root}/v2.0`,
        authorization_endpoint: `${root}/oauth2/v2.0/authorize`,
        token_endpoint: `${root}/oauth2/v2.0/token`,
        jwks_uri: `${root}/discovery/v2.0/keys`,
        end_session_endpoint: `${root}/oauth2/v2.0/logout`,
        response_types_supported: ['code', 'id_token', 'token'],
        token_endpoint_auth_methods_supported: ['client_secret_post', 'private_key_jwt'],
      });
    }
    if (req.method === 'POST' && rest === 'oauth2/v2.0/token') return this.token(req, res);
    return send(res, 404, { error: 'not_found', error_description: `no such endpoint ${req.method} ${url.pathname}` });
  }

  private async token(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const form = new URLSearchParams(await readBody(req));
    if (form.get('grant_type') !== 'client_credentials') {
      return send(res, 400, { error: 'unsupported_grant_type', error_description: 'AADSTS70003: this fake supports client_credentials only.' });
    }
    const appId = form.get('client_id') ?? '';
    const app = this.apps.get(appId);
    if (!app) {
      return send(res, 400, {
        error: 'unauthorized_client',
        error_description: `AADSTS700016: Application with identifier '${appId}' was not found in the directory '${this.tenantId}'.`,
      });
    }
    const scope = form.get('scope') ?? '';
    const resource = scope.split(' ').find((s) => s.endsWith('/.default'));
    if (!resource) return send(res, 400, { error: 'invalid_scope', error_description: `AADSTS1002012: The provided value for scope ${scope} is not valid.` });
    const secret = form.get('client_secret');
    const assertion = form.get('client_assertion');
    const endpoint = `${this.base}/${this.tenantId}/oauth2/v2.0/token`;
    const ok =
      secret !== null
        ? app.secret !== undefined && equal(secret, app.secret)
        : assertion !== null && app.certificatePem !== undefined && validAssertion(assertion, app.certificatePem, appId, endpoint);
    if (!ok) {
      return send(res, 401, {
        error: 'invalid_client',
        error_description:
          secret !== null
            ? `AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '${appId}'.`
            : `AADSTS700027: The certificate with identifier used to sign the client assertion is not registered on application ${appId}.`,
      });
    }
    const token = randomBytes(24).toString('base64url');
    this.tokens.set(token, { appId, audience: resource.slice(0, -'/.default'.length), expiresAt: Date.now() + this.tokenLifetimeS * 1000 });
    this.tokensIssued++;
    return send(res, 200, { token_type: 'Bearer', expires_in: this.tokenLifetimeS, ext_expires_in: this.tokenLifetimeS, access_token: token });
  }
}

function equal(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** A client assertion JWT signed by the registered certificate's key, for this app and endpoint. */
function validAssertion(jwt: string, certificatePem: string, appId: string, endpoint: string): boolean {
  const [h, p, s] = jwt.split('.');
  if (!h || !p || !s) return false;
  try {
    const header = JSON.parse(Buffer.from(h, 'base64url').toString()) as { alg?: string };
    const claims = JSON.parse(Buffer.from(p, 'base64url').toString()) as { aud?: string; iss?: string; sub?: string; exp?: number };
    const key = createPublicKey(new X509Certificate(certificatePem).publicKey.export({ type: 'spki', format: 'pem' }));
    const data = Buffer.from(`${h}.${p}`);
    const signature = Buffer.from(s, 'base64url');
    const signed =
      header.alg === 'RS256'
        ? verify('sha256', data, key, signature)
        : header.alg === 'PS256'
          ? verify('sha256', data, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }, signature)
          : false;
    return signed && claims.aud === endpoint && claims.iss === appId && claims.sub === appId && (claims.exp ?? 0) * 1000 > Date.now();
  } catch {
    return false;
  }
}

export async function readBody(req: IncomingMessage, max = 1 << 20): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > max) throw new Error('request body too large');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

export function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = body === undefined ? '' : JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers });
  res.end(text);
}
