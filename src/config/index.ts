export type * from './types.js';
export { loadConfigFile, parseConfig } from './load.js';
export { watchConfig, type ConfigWatchHandlers } from './watch.js';
