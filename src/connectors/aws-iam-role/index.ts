export { AwsIamRoleConnector } from './aws-iam-role-connector.js';
