import type { ColumnType, Generated, JSONColumnType } from 'kysely';
import type { ApprovalStage } from '../domain/policy/types.js';
import type { Principal } from '../domain/principal.js';

/** Kysely's view of the tables the migrations create. Column names are snake_case as in SQL. */
export interface Database {
  requests: RequestsTable;
  reviews: ReviewsTable;
  grants: GrantsTable;
  jobs: JobsTable;
  connector_attempts: ConnectorAttemptsTable;
  config_versions: ConfigVersionsTable;
  audit_events: AuditEventsTable;
  audit_head: AuditHeadTable;
  audit_checkpoints: AuditCheckpointsTable;
  users: UsersTable;
  api_tokens: ApiTokensTable;
}

export interface UsersTable {
  id: string;
  name: string;
  kind: 'user' | 'service';
  groups: JSONColumnType<string[]>;
  password_hash: string | null;
  created_at: Timestamp;
  disabled_at: Timestamp | null;
}

export interface ApiTokensTable {
  id: string;
  user_id: string;
  name: string;
  secret_hash: string;
  scopes: JSONColumnType<string[]>;
  created_at: Timestamp;
  expires_at: Timestamp | null;
  last_used_at: Timestamp | null;
  revoked_at: Timestamp | null;
}

type Timestamp = ColumnType<Date, Date | string, Date | string>;
/** bigint columns come back from pg as strings; we keep them numbers below 2^53 by contract. */
type BigIntColumn = ColumnType<string, number | bigint | string, number | bigint | string>;

export interface RequestsTable {
  id: string;
  kind: 'access' | 'extension' | 'break_glass';
  principal_id: string;
  principal: JSONColumnType<Principal>;
  target: string;
  entitlement: string;
  duration_ms: BigIntColumn;
  reason: string;
  ticket: string | null;
  status: 'pending' | 'approved' | 'denied' | 'cancelled' | 'timed_out';
  policy: string | null;
  policy_version: string;
  reasons: JSONColumnType<string[]>;
  stages: JSONColumnType<ApprovalStage[]>;
  current_stage: number;
  grant_id: string | null;
  client: JSONColumnType<Record<string, unknown>>;
  created_at: Timestamp;
  decided_at: Timestamp | null;
  pending_until: Timestamp | null;
  /** Break-glass only: when and by whom the after-the-fact review was done. */
  reviewed_at: Timestamp | null;
  reviewed_by: string | null;
}

export interface ReviewsTable {
  id: string;
  request_id: string;
  reviewer_id: string;
  reviewer: JSONColumnType<Principal>;
  decision: 'approve' | 'deny';
  comment: string;
  stage: number;
  created_at: Timestamp;
}

export interface GrantsTable {
  id: string;
  request_id: string;
  principal_id: string;
  target: string;
  entitlement: string;
  /** Grants with equal keys give the same access at the target and are reference-counted. */
  access_key: string;
  status: 'provisioning' | 'active' | 'revoking' | 'revoked' | 'failed';
  duration_ms: BigIntColumn;
  break_glass: boolean;
  activated_at: Timestamp | null;
  expires_at: Timestamp | null;
  end_reason: string | null;
  ended_by: string | null;
  ended_at: Timestamp | null;
  extensions: number;
  /** What the connector returned from provision; passed back to revoke. */
  handle: JSONColumnType<Record<string, unknown>> | null;
  provision_attempts: number;
  revoke_attempts: number;
  last_error: string | null;
  /** Set when the target revoke was skipped because another grant still covers the same access. */
  covered_by: string | null;
  created_at: Timestamp;
}

export type JobKind = 'provision' | 'expire' | 'revoke' | 'request_timeout';

export interface JobsTable {
  id: string;
  kind: JobKind;
  subject_id: string;
  due_at: Timestamp;
  attempts: Generated<number>;
  last_error: string | null;
  /** Advisory-lock key of the worker holding the job; a dead worker's key is no longer locked. */
  locked_by: number | null;
  locked_until: Timestamp | null;
  created_at: Timestamp;
}

export interface ConnectorAttemptsTable {
  id: string;
  grant_id: string;
  operation: 'provision' | 'revoke';
  worker: number;
  started_at: Timestamp;
  finished_at: Timestamp | null;
  outcome: 'ok' | 'error' | null;
  error: string | null;
}

export interface ConfigVersionsTable {
  version: string;
  source: string;
  first_loaded_at: Timestamp;
}

export interface AuditEventsTable {
  seq: BigIntColumn;
  id: string;
  /** The exact bytes that were hashed: canonical JSON of the event. Never re-serialised. */
  payload: string;
  prev_hash: string;
  hash: string;
}

export interface AuditHeadTable {
  id: number;
  seq: BigIntColumn;
  hash: string;
}

export interface AuditCheckpointsTable {
  seq: BigIntColumn;
  hash: string;
  created_at: Timestamp;
  key_id: string;
  signature: string;
}
