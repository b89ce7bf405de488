export { policyInputSources, type PolicyInputSources } from './sources.js';
export { ONCALL_PAYLOAD_VERSION } from './oncall-webhook.js';
export { normaliseDn, readLdapDirectory, type LdapGroup, type LdapPerson, type LdapSnapshot } from './ldap-directory.js';
