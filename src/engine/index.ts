export { Engine, type EngineOptions, type EngineStats } from './engine.js';
export type { AccessCheck } from './grants.js';
export * from './inputs.js';
export { failpoint, FAILPOINTS, IDEMPOTENCY_FAILPOINTS, type Failpoint } from './failpoints.js';
export { backoffMs } from './provisioning.js';
export type { ReconcileReport, ManualReconcile } from './reconciliation.js';
export type { Change } from './context.js';
