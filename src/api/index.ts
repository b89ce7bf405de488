export { buildApiServer, type ApiServer, type ApiServerOptions } from './server.js';
