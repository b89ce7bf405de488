export { GcpIamConnector, type GcpIamConnectorOptions } from './gcp-iam-connector.js';
export type { TokenSource } from './credentials.js';
