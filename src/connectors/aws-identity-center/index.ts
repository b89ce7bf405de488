export { AwsIdentityCenterConnector } from './aws-identity-center-connector.js';
