/**
 * Account data the API needs beside sign-in (listing and revoking API tokens, finding a user):
 * the API reaches it through auth, never the store itself. The queries are store repositories
 * (src/store/api-tokens.ts, src/store/users.ts).
 */
export { findEnabledUserById, findTokenOwner, getUserByName, listTokensOf, revokeTokensOfUser, type TokenListing } from '../store/index.js';
