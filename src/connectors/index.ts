export * from './types.js';
export { NoopConnector, type NoopCall, type NoopBehaviour } from './noop/noop-connector.js';
export { SshConnector } from './ssh/ssh-connector.js';
export { PostgresConnector, type PostgresConnectorOptions } from './postgres/postgres-connector.js';
export { MysqlConnector, type MysqlConnectorOptions } from './mysql/mysql-connector.js';
export { RedisConnector } from './redis/index.js';
export { RabbitMqConnector } from './rabbitmq/index.js';
export { WebhookConnector, verifyWebhookSignature } from './webhook/index.js';
export { AwsIamRoleConnector } from './aws-iam-role/index.js';
export { AzureRbacConnector } from './azure-rbac/index.js';
export { AwsIdentityCenterConnector } from './aws-identity-center/index.js';
export { KubernetesConnector, type KubernetesConnectorOptions } from './kubernetes/index.js';
export { GcpIamConnector, type GcpIamConnectorOptions, type TokenSource } from './gcp-iam/index.js';
import { NoopConnector } from './noop/noop-connector.js';
import { SshConnector } from './ssh/ssh-connector.js';
import { PostgresConnector } from './postgres/postgres-connector.js';
import { MysqlConnector } from './mysql/mysql-connector.js';
import { RedisConnector } from './redis/index.js';
import { RabbitMqConnector } from './rabbitmq/index.js';
import { WebhookConnector } from './webhook/index.js';
import { AwsIamRoleConnector } from './aws-iam-role/index.js';
import { AzureRbacConnector } from './azure-rbac/index.js';
import { AwsIdentityCenterConnector } from './aws-identity-center/index.js';
import { KubernetesConnector } from './kubernetes/index.js';
import { GcpIamConnector } from './gcp-iam/index.js';
import { connectorRegistry, type ConnectorRegistry } from './types.js';

/** The connectors `lapse` ships with. */
export function builtInConnectors(): ConnectorRegistry {
  return connectorRegistry([
    new NoopConnector(),
    new SshConnector(),
    new PostgresConnector(),
    new MysqlConnector(),
    new RedisConnector(),
    new RabbitMqConnector(),
    new WebhookConnector(),
    new AwsIamRoleConnector(),
    new AzureRbacConnector(),
    new AwsIdentityCenterConnector(),
    new KubernetesConnector(),
    new GcpIamConnector(),
  ]);
}
