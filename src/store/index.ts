export { openStore, migrateToLatest, pendingMigrations, databaseNow, type Store, type StoreOptions } from './database.js';
export { LATEST_MIGRATION } from './migrations/index.js';
export type * from './schema.js';
export * from './requests.js';
export * from './grants.js';
export * from './jobs.js';
export * from './workers.js';
