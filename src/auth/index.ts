export { createUser, emailAddressSchema, findUserByName, setEmailAddress, userNameSchema, type LocalUser } from './principals.js';
export {
  authenticateToken,
  issueApiToken,
  OFFLINE_ISSUER_PREFIX,
  revokeApiToken,
  TOKEN_SCOPES,
  type IssuedToken,
  type TokenIdentity,
  type TokenScope,
} from './tokens.js';
export {
  createSession,
  csrfTokenFor,
  endAllSessions,
  endSession,
  findSession,
  markSessionMfa,
  touchSession,
  type ActiveSession,
  type NewSession,
  type SessionTimeouts,
  type SignInMethod,
} from './sessions.js';
export { checkLocalPassword, findAccount, setPassword, type PasswordAttempt, type SignInUser } from './local-login.js';
export { checkPasswordPolicy, hashPassword, verifyPassword, PASSWORD_MAX_LENGTH, PASSWORD_MIN_LENGTH } from './passwords.js';
export { effectiveTokenScopes, hasScope, isHttps, roleNames, sessionCookieName, sessionScopes } from './roles.js';
export { auditedChange } from './audited.js';
export { AuthService } from './service.js';
export { authenticateScimToken, issueScimToken, revokeScimToken, type IssuedScimToken } from './scim-tokens.js';
