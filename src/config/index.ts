export type * from './types.js';
export { loadConfigFile, parseConfig, type ConfigCheckOptions } from './load.js';
export { watchConfig, type ConfigWatchHandlers } from './watch.js';
export { parsePolicyCases, runPolicyCases, type PolicyCase, type CaseResult } from './policy-cases.js';
export { channelTimeoutMs } from './notifications.js';
