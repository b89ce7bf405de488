export { KubernetesConnector, type KubernetesConnectorOptions } from './kubernetes-connector.js';
