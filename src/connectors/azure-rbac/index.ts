export { AzureRbacConnector } from './azure-rbac-connector.js';
export { customRole, LAPSE_ROLE_ACTIONS } from './target-check.js';
