export { RedisConnector } from './redis-connector.js';
export { ephemeralAccountName, parseEphemeralAccountName, type EphemeralAccount } from './ephemeral-account.js';
