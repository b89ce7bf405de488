/**
 * Pieces the connectors to real systems share: naming ephemeral accounts from grant ids, their
 * passwords, `settings.tls`, settings checks and deadlines. Keep it small: anything specific to
 * one system belongs in that connector's folder.
 */
export { ephemeralAccountName, grantIdOfAccount } from './account-name.js';
export { newAccountPassword } from './password.js';
export { defaultWarn, tlsOptions, validateTls, warnIfInsecure, type TlsSettings, type Warn } from './tls.js';
export { checkAccounts, checkHost, checkInteger, checkKnownKeys, checkName, checkNameList, checkPort } from './settings-checks.js';
export { withinDeadline } from './deadline.js';
