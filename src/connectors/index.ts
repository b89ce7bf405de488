export * from './types.js';
export { NoopConnector, type NoopCall, type NoopBehaviour } from './noop/noop-connector.js';
import { NoopConnector } from './noop/noop-connector.js';
import { connectorRegistry, type ConnectorRegistry } from './types.js';

/** The connectors `lapse` ships with. */
export function builtInConnectors(): ConnectorRegistry {
  return connectorRegistry([new NoopConnector()]);
}
