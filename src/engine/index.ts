export { Engine, type EngineOptions, type EngineStats } from './engine.js';
export type { AccessCheck } from './access-checks.js';
export * from './inputs.js';
export { failpoint, FAILPOINTS, IDEMPOTENCY_FAILPOINTS, NOTIFY_FAILPOINTS, VAULT_FAILPOINTS, type Failpoint } from './failpoints.js';
export { backoffMs } from './target-calls.js';
export type { ReconcileReport, ManualReconcile } from './reconciliation.js';
export type { Change } from './context.js';
export { checkTargets, type TargetCheck, type TargetCheckOptions } from './target-checks.js';
export type { ConnectorCallSample, ConnectorOperation, JobClaimSample, NotificationSendSample, Telemetry, TelemetryObserver } from './telemetry.js';
export { breakGlassEntitlements, type BreakGlassEntitlement } from './break-glass-scope.js';
/** What the engine's reads return (the API's and CLI's view models start from these). */
export type { Finding, StoredGrant, Alert } from '../store/index.js';
export type { AlertChangeInput } from './alerts.js';
export { ONBOARD_MFA_MAX_AGE_MS, type VaultAccountView } from './vault-onboarding.js';
