import type { AuthConfig } from '../config/types.js';
import { isAdmin, isAuditor, type Roles } from '../domain/authorization.js';
import type { Principal, SubjectSet } from '../domain/principal.js';
import { TOKEN_SCOPES, type TokenScope } from './tokens.js';

/**
 * What a signed-in person may do through a session: everyone may read, request and approve (what
 * they may actually request or approve is up to the policies); admin only for `roles.admins`.
 */
export function sessionScopes(principal: Principal, roles: Pick<Roles, 'admins'>): TokenScope[] {
  return isAdmin(roles, principal) ? ['read', 'request', 'approve', 'admin'] : ['read', 'request', 'approve'];
}

/**
 * What a token may do now: its scopes, but never more than its owner may do at this moment (a
 * token made while its owner was an admin loses `admin` when they leave roles.admins, and gets it
 * back if they return). `admin` on a token stands for every scope.
 */
export function effectiveTokenScopes(tokenScopes: readonly TokenScope[], principal: Principal, roles: { readonly admins: SubjectSet }): TokenScope[] {
  const allowed = sessionScopes(principal, roles);
  if (!tokenScopes.includes('admin')) return tokenScopes.filter((scope) => allowed.includes(scope));
  return allowed.includes('admin') ? [...tokenScopes] : TOKEN_SCOPES.filter((scope) => allowed.includes(scope));
}

/** Whether scopes allow an action needing `scope` (`admin` stands for every scope). */
export function hasScope(scopes: readonly TokenScope[], scope: TokenScope): boolean {
  return scopes.includes(scope) || scopes.includes('admin');
}

/** The role names a principal holds, for whoami views. */
export function roleNames(principal: Principal, roles: Roles): string[] {
  return [...(isAdmin(roles, principal) ? ['admin'] : []), ...(isAuditor(roles, principal) ? ['auditor'] : [])];
}

/** Cookies are Secure (and `__Host-` prefixed, so no subdomain can set them) when Lapse is served over https. */
export function sessionCookieName(auth: Pick<AuthConfig, 'publicUrl'>): string {
  return isHttps(auth) ? '__Host-lapse_session' : 'lapse_session';
}

export function isHttps(auth: Pick<AuthConfig, 'publicUrl'>): boolean {
  return auth.publicUrl?.startsWith('https://') ?? false;
}
