export { RabbitMqConnector } from './rabbitmq-connector.js';
