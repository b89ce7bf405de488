export { createUser, findUserByName, toPrincipal, userNameSchema, type LocalUser } from './principals.js';
export { authenticateToken, issueApiToken, revokeApiToken, TOKEN_SCOPES, type IssuedToken, type TokenIdentity, type TokenScope } from './tokens.js';
