export { policyInputSources, type PolicyInputSources } from './sources.js';
export { ONCALL_PAYLOAD_VERSION } from './oncall-webhook.js';
