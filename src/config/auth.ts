import type { ParsedConfig } from './schema.js';
import { resolveReference, type SecretContext } from './secrets.js';
import type { AuthConfig } from './types.js';

const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]']);

export function isLoopbackUrl(url: string): boolean {
  return LOOPBACK_HOSTS.has(new URL(url).hostname);
}

/**
 * The `auth:` section as the server uses it: the client secret resolved from its reference, and
 * the checks zod cannot express alone (plain http only as the named, loopback-only opt-in).
 */
export function resolveAuthConfig(auth: ParsedConfig['auth'], secrets: SecretContext): AuthConfig {
  const problems = secrets.problems;
  const oidc = auth.oidc;
  let clientSecret: string | undefined;
  if (oidc) {
    if (oidc.clientSecret !== undefined && !oidc.clientSecret.startsWith('${')) {
      problems.push('auth.oidc.clientSecret: give the secret as a reference (${env:NAME} or ${file:path}), not inline');
    } else if (oidc.clientSecret !== undefined) {
      clientSecret = resolveReference(oidc.clientSecret, 'auth.oidc.clientSecret', secrets) || undefined;
    }
    const issuer = new URL(oidc.issuer);
    if (issuer.protocol === 'http:' && !oidc.allowInsecureHttp) {
      problems.push(
        `auth.oidc.issuer: "${oidc.issuer}" is plain http; use https (for a test provider on this machine only, set auth.oidc.allowInsecureHttp: true)`,
      );
    }
    if (oidc.allowInsecureHttp && !isLoopbackUrl(oidc.issuer)) {
      problems.push(`auth.oidc.allowInsecureHttp: only allowed for an issuer on 127.0.0.1, localhost or [::1], not ${issuer.hostname}`);
    }
  }
  if (!oidc && !auth.local.enabled) problems.push('auth: with auth.local.enabled false, configure auth.oidc, or nobody can sign in');
  if (auth.sessions.idleTimeout > auth.sessions.absoluteTimeout) problems.push('auth.sessions: idleTimeout must not exceed absoluteTimeout');
  return {
    publicUrl: auth.publicUrl?.replace(/\/+$/, ''),
    oidc: oidc && {
      issuer: oidc.issuer,
      clientId: oidc.clientId,
      clientSecret,
      scopes: oidc.scopes,
      groupsClaim: oidc.groupsClaim,
      usernameClaim: oidc.usernameClaim,
      allowInsecureHttp: oidc.allowInsecureHttp,
    },
    local: { enabled: auth.local.enabled },
    sessions: { idleTimeoutMs: auth.sessions.idleTimeout, absoluteTimeoutMs: auth.sessions.absoluteTimeout },
    loginLimits: auth.loginLimits,
    trustedProxies: auth.trustedProxies,
  };
}
