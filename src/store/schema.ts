import type { ColumnType, Generated, JSONColumnType } from 'kysely';
import type { GrantStatus } from '../domain/grant.js';
import type { ApprovalStage } from '../domain/policy/types.js';
import type { Principal } from '../domain/principal.js';
import type { RequestKind, RequestStatus } from '../domain/request.js';
import type { ReviewDecision } from '../domain/review.js';
import type { RotationReason, VaultAccountStatus } from '../domain/vault.js';
import type { PersonBaseline, SeenKind } from '../domain/risk.js';
import type { AlertSeverity, AlertStatus } from '../domain/anomalies.js';

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
  audit_export_cursors: AuditExportCursorsTable;
  users: UsersTable;
  api_tokens: ApiTokensTable;
  sessions: SessionsTable;
  login_failures: LoginFailuresTable;
  oidc_flows: OidcFlowsTable;
  cli_login_codes: CliLoginCodesTable;
  setup_tokens: SetupTokensTable;
  grant_credentials: GrantCredentialsTable;
  findings: FindingsTable;
  reconcile_runs: ReconcileRunsTable;
  mfa_totp: MfaTotpTable;
  webauthn_credentials: WebauthnCredentialsTable;
  mfa_challenges: MfaChallengesTable;
  mfa_failures: MfaFailuresTable;
  idempotency_keys: IdempotencyKeysTable;
  notification_deliveries: NotificationDeliveriesTable;
  notification_preferences: NotificationPreferencesTable;
  vault_accounts: VaultAccountsTable;
  directory_groups: DirectoryGroupsTable;
  directory_group_members: DirectoryGroupMembersTable;
  scim_tokens: ScimTokensTable;
  slack_identities: SlackIdentitiesTable;
  slack_link_codes: SlackLinkCodesTable;
  slack_messages: SlackMessagesTable;
  slack_interactions_seen: SlackInteractionsSeenTable;
  review_campaigns: ReviewCampaignsTable;
  review_items: ReviewItemsTable;
  webhook_subscriptions: WebhookSubscriptionsTable;
  webhook_deliveries: WebhookDeliveriesTable;
  risk_people: RiskPeopleTable;
  risk_person_targets: RiskPersonTargetsTable;
  risk_group_members: { group_name: string; principal_id: string };
  risk_groups: { group_name: string; users: number };
  risk_group_targets: { group_name: string; target: string; entitlement: string; users: number };
  risk_seen: RiskSeenTable;
  alerts: AlertsTable;
  alert_counters: { key: string; value: number; at_ms: BigIntColumn };
  alert_cursor: { id: number; seq: BigIntColumn };
}

/** A person's risk baseline (src/domain/risk.ts PersonBaseline), folded forward per request. */
export interface RiskPeopleTable {
  principal_id: string;
  baseline: JSONColumnType<PersonBaseline>;
  updated_at: Timestamp;
}

export interface RiskPersonTargetsTable {
  principal_id: string;
  target: string;
  entitlement: string;
  requests: number;
  first_at: Timestamp;
  last_at: Timestamp;
}

/** A client attribute (network, user agent, country, ASN) a person was seen with. */
export interface RiskSeenTable {
  principal_id: string;
  kind: SeenKind;
  value: string;
  first_at: Timestamp;
  last_at: Timestamp;
}

/** An anomaly alert (docs/monitoring.md#alerts); one unresolved alert per dedupe key. */
export interface AlertsTable {
  id: string;
  kind: string;
  severity: AlertSeverity;
  status: AlertStatus;
  principal_id: string | null;
  subject: string | null;
  summary: string;
  detail: JSONColumnType<Record<string, unknown>>;
  dedupe_key: string;
  occurrences: Generated<number>;
  raised_at: Timestamp;
  last_seen_at: Timestamp;
  acknowledged_at: Timestamp | null;
  acknowledged_by: string | null;
  resolved_at: Timestamp | null;
  resolved_by: string | null;
  note: string | null;
}

/** An account in the vault (docs/vault.md); passwords sealed (src/secrets), bound to the account id and generation. */
export interface VaultAccountsTable {
  id: string;
  target: string;
  account: string;
  status: VaultAccountStatus;
  generation: number;
  current_sealed: string;
  /** The next password, stored before the target is told; only while rotating. */
  pending_sealed: string | null;
  pending_since: Timestamp | null;
  holder_grant_id: string | null;
  rotation_reason: RotationReason | null;
  rotated_at: Timestamp | null;
  rotation_failures: Generated<number>;
  failing_since: Timestamp | null;
  last_error: string | null;
  onboarded_at: Timestamp;
  onboarded_by: string;
}

export interface IdempotencyKeysTable {
  principal_id: string;
  key: string;
  /** sha256 of method, route and body: the same key with another request is refused. */
  fingerprint: string;
  /** Null while the first request with this key is still running. */
  status: number | null;
  body: string | null;
  created_at: Timestamp;
}

export interface GrantCredentialsTable {
  grant_id: string;
  principal_id: string;
  key_id: string;
  /** AES-256-GCM sealed JSON (see src/secrets/sealer.ts), bound to the grant id. */
  sealed: string;
  created_at: Timestamp;
}

export interface UsersTable {
  id: string;
  name: string;
  kind: 'user' | 'service';
  groups: JSONColumnType<string[]>;
  password_hash: string | null;
  created_at: Timestamp;
  disabled_at: Timestamp | null;
  /** Where the user comes from: created here, or signed in through OIDC. */
  source: Generated<'local' | 'oidc'>;
  /** OIDC users: `<issuer>#<sub>`, their stable identity at the IdP. */
  external_id: string | null;
  /** Where notifications by email go: the OIDC email claim, or set by an admin. */
  email: Generated<string | null>;
  /** The directory that manages this person (SCIM or LDAP sync), or null. */
  directory: Generated<'scim' | 'ldap' | null>;
  /** Their id in that directory: the SCIM externalId, the LDAP DN. */
  directory_id: Generated<string | null>;
  display_name: Generated<string | null>;
  /** Why they were disabled (deprovisioning), while disabled_at is set. */
  disabled_reason: Generated<string | null>;
}

/** A group a directory (SCIM, LDAP) manages; members' users.groups carry its display name. */
export interface DirectoryGroupsTable {
  id: string;
  directory: 'scim' | 'ldap';
  display_name: string;
  directory_id: string | null;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface DirectoryGroupMembersTable {
  group_id: string;
  user_id: string;
}

/** Bearer tokens for the SCIM endpoints only (stored as SHA-256 of a 256-bit secret). */
export interface ScimTokensTable {
  id: string;
  name: string;
  secret_hash: string;
  created_at: Timestamp;
  created_by: string;
  expires_at: Timestamp | null;
  last_used_at: Timestamp | null;
  revoked_at: Timestamp | null;
}

/** Browser sessions; the cookie carries a 256-bit secret, the row only its SHA-256. */
export interface SessionsTable {
  id: string;
  secret_hash: string;
  user_id: string;
  method: 'password' | 'oidc' | 'setup';
  created_at: Timestamp;
  last_seen_at: Timestamp;
  /** The absolute limit; the idle limit is judged from last_seen_at and the config in force. */
  expires_at: Timestamp;
  /** When a second factor was last verified in this session (step-up), or null. */
  mfa_at: Timestamp | null;
  ended_at: Timestamp | null;
  ip: string | null;
  user_agent: string | null;
}

/** One failed sign-in; counted per account and per IP over sliding windows. */
export interface LoginFailuresTable {
  account: string;
  ip: string;
  at: Timestamp;
}

/** An OIDC sign-in in flight (state, nonce, PKCE verifier), keyed by the hash of a browser cookie. */
export interface OidcFlowsTable {
  id_hash: string;
  state: string;
  nonce: string;
  code_verifier: string;
  return_to: string;
  cli: JSONColumnType<{ port: number; state: string; codeChallenge: string }> | null;
  created_at: Timestamp;
  expires_at: Timestamp;
}

/** One-time codes handed to `lapse login`'s loopback listener, exchanged with the PKCE verifier. */
export interface CliLoginCodesTable {
  code_hash: string;
  user_id: string;
  code_challenge: string;
  created_at: Timestamp;
  expires_at: Timestamp;
  used_at: Timestamp | null;
}

/** First-start setup tokens: single use, 24 hours. */
export interface SetupTokensTable {
  secret_hash: string;
  created_at: Timestamp;
  expires_at: Timestamp;
  used_at: Timestamp | null;
  used_by: string | null;
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
  /** Who issued it: the owner, an admin (for a service identity), or `cli:<os user>` (offline). */
  issued_by: string;
  /** The token it was created with, if it was made with one: revoking that one revokes this too. */
  minted_by: string | null;
}

type Timestamp = ColumnType<Date, Date | string, Date | string>;
/** bigint columns come back from pg as strings; we keep them numbers below 2^53 by contract. */
type BigIntColumn = ColumnType<string, number | bigint | string, number | bigint | string>;

export interface RequestsTable {
  id: string;
  kind: RequestKind;
  principal_id: string;
  principal: JSONColumnType<Principal>;
  target: string;
  entitlement: string;
  duration_ms: BigIntColumn;
  reason: string;
  ticket: string | null;
  parameters: JSONColumnType<Record<string, string>>;
  status: RequestStatus;
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
  decision: ReviewDecision;
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
  status: GrantStatus;
  duration_ms: BigIntColumn;
  break_glass: boolean;
  parameters: JSONColumnType<Record<string, string>>;
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
  propagation_pending: string | null;
  created_at: Timestamp;
}

export type JobKind =
  | 'provision'
  | 'expire'
  | 'revoke'
  | 'request_timeout'
  | 'reconcile'
  | 'extend'
  | 'notify'
  | 'notify_ending'
  | 'notify_reminder'
  | 'notify_escalation'
  | 'rotate'
  | 'webhook'
  | 'review_open'
  | 'review_due'
  | 'ldap_sync'
  | 'detect';

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

/** Where an audit export (a sink's events, a witness's checkpoints) has got to (migration 0018). */
export interface AuditExportCursorsTable {
  name: string;
  seq: BigIntColumn;
  hash: string;
  exported_at: Timestamp | null;
  exported_total: BigIntColumn;
  failures: number;
  last_error: string | null;
  last_error_at: Timestamp | null;
  lease_owner: string | null;
  lease_until: Timestamp | null;
}

/** Drift reconciliation found at a target: access Lapse did not grant, or granted access that is gone. */
export interface FindingsTable {
  id: string;
  target: string;
  entitlement: string;
  account: string;
  principal_id: string;
  kind: 'standing' | 'missing';
  /** Missing access: the grant whose access is absent. */
  grant_id: string | null;
  status: 'open' | 'resolved' | 'remediated';
  first_seen_at: Timestamp;
  last_seen_at: Timestamp;
  resolved_at: Timestamp | null;
  remediated_at: Timestamp | null;
  detail: JSONColumnType<Record<string, unknown>>;
}

/** One reconciliation of one target: when, what it saw, what it changed, or why it failed. */
export interface ReconcileRunsTable {
  id: Generated<string>;
  target: string;
  trigger: 'schedule' | 'manual';
  started_at: Timestamp;
  finished_at: Timestamp | null;
  listed: Generated<number>;
  standing: Generated<number>;
  missing: Generated<number>;
  opened: Generated<number>;
  resolved: Generated<number>;
  remediated: Generated<number>;
  error: string | null;
}

/** A user's authenticator-app (TOTP) factor; the secret is sealed (src/secrets), bound to the user id. */
export interface MfaTotpTable {
  id: string;
  user_id: string;
  secret_sealed: string;
  status: 'pending' | 'active';
  /** The last accepted 30-second time-step: codes at or before it are replays. */
  last_step: BigIntColumn | null;
  created_at: Timestamp;
  confirmed_at: Timestamp | null;
  last_used_at: Timestamp | null;
}

/** A registered WebAuthn passkey: public key and signature counter only. */
export interface WebauthnCredentialsTable {
  id: string;
  user_id: string;
  /** The authenticator's credential id (base64url). */
  credential_id: string;
  name: string;
  public_key: Uint8Array;
  counter: BigIntColumn;
  transports: JSONColumnType<string[]>;
  device_type: string;
  backed_up: boolean;
  created_at: Timestamp;
  last_used_at: Timestamp | null;
}

/** A WebAuthn challenge the server issued: used at most once, before `expires_at`. */
export interface MfaChallengesTable {
  challenge: string;
  user_id: string;
  purpose: 'registration' | 'authentication';
  created_at: Timestamp;
  expires_at: Timestamp;
}

export interface MfaFailuresTable {
  id: Generated<string>;
  user_id: string;
  factor: string;
  at: Timestamp;
}

export type DeliveryStatus = 'pending' | 'sent' | 'failed' | 'skipped';

/** The notification outbox: one message to one recipient over one channel, written with the change it tells of. */
export interface NotificationDeliveriesTable {
  /** `ntf_…`; also the message's stable id (email Message-ID), the same on every attempt. */
  id: string;
  /** One delivery per event occurrence, channel and recipient, however often the event recurs. */
  dedupe_key: string;
  event: string;
  subject_id: string | null;
  channel: string;
  channel_type: string;
  /** A user (principal id), or `address:<addr>` for an address named in the rule. */
  recipient: string;
  urgent: Generated<boolean>;
  /** What the message says: ids, names, times, reasons. Never credentials. */
  payload: JSONColumnType<Record<string, unknown>>;
  status: DeliveryStatus;
  attempts: Generated<number>;
  last_error: string | null;
  created_at: Timestamp;
  sent_at: Timestamp | null;
  finished_at: Timestamp | null;
}

export interface NotificationPreferencesTable {
  principal_id: string;
  email_enabled: boolean;
  /** Quiet hours as minutes after midnight in `timezone`; both null for none. */
  quiet_start: number | null;
  quiet_end: number | null;
  timezone: string;
  updated_at: Timestamp;
}

/** A person's Slack user id, linked by a code they sent to the app or by an admin (never by email). */
export interface SlackIdentitiesTable {
  principal_id: string;
  slack_user_id: string;
  linked_by: string;
  linked_at: Timestamp;
}

/** A one-time linking code (its SHA-256), one per person at a time. */
export interface SlackLinkCodesTable {
  code_hash: string;
  principal_id: string;
  expires_at: Timestamp;
  created_at: Timestamp;
}

/** Where a delivery's Slack message went, so it can be updated in place. */
export interface SlackMessagesTable {
  delivery_id: string;
  request_id: string;
  channel: string;
  conversation: string;
  ts: string;
  event: string;
  created_at: Timestamp;
}

/** Signatures of accepted Slack interactions, refused if seen again (pruned after the window). */
export interface SlackInteractionsSeenTable {
  signature: string;
  seen_at: Timestamp;
}

/** One access-review round (docs/reviews.md): its rules as they were when it opened. */
export interface ReviewCampaignsTable {
  id: string;
  name: string;
  origin: 'config' | 'api';
  status: 'open' | 'closed';
  settings: JSONColumnType<Record<string, unknown>>;
  period_from: Timestamp;
  period_to: Timestamp;
  opened_at: Timestamp;
  opened_by: string;
  deadline: Timestamp;
  config_version: string;
  closed_at: Timestamp | null;
  closed_by: string | null;
}

/** One person's access to one entitlement under review, its evidence, decision and outcome. */
export interface ReviewItemsTable {
  id: string;
  campaign_id: string;
  kind: 'eligible' | 'used' | 'standing';
  principal_id: string;
  target: string;
  entitlement: string;
  policy: string | null;
  finding_id: string | null;
  high_risk: boolean;
  reviewers: JSONColumnType<{ users: string[]; groups: string[] }>;
  evidence: JSONColumnType<Record<string, unknown>>;
  decision: 'keep' | 'remove' | 'unsure' | null;
  by_default: Generated<boolean>;
  justification: string | null;
  decided_by: string | null;
  decided_at: Timestamp | null;
  outcome: 'pending' | 'kept' | 'flagged' | 'removed' | 'remove_failed' | 'change_proposed' | 'change_applied';
  outcome_detail: JSONColumnType<Record<string, unknown>>;
}

/** An outbound event webhook (docs/notifications.md): admin-managed, its signing secret sealed. */
export interface WebhookSubscriptionsTable {
  /** `whk_…` */
  id: string;
  url: string;
  description: string;
  /** Event names it receives; empty for all. */
  events: JSONColumnType<string[]>;
  allow_insecure_http: boolean;
  /** The `whsec_…` secret, sealed (src/secrets) and bound to the subscription id. */
  secret_sealed: string;
  created_by: string;
  created_at: Timestamp;
}

export type WebhookDeliveryStatus = 'pending' | 'sent' | 'failed';

/** One event to one subscription, written with the change it tells of; `id` is the `webhook-id`. */
export interface WebhookDeliveriesTable {
  /** `whd_…` */
  id: string;
  subscription_id: string;
  dedupe_key: string;
  event: string;
  subject_id: string | null;
  /** The JSON body exactly as signed and sent (a replay sends the same bytes). */
  body: string;
  status: WebhookDeliveryStatus;
  attempts: Generated<number>;
  replays: Generated<number>;
  /** HTTP status of the last answer, null when none came. */
  last_status: number | null;
  last_error: string | null;
  created_at: Timestamp;
  sent_at: Timestamp | null;
  finished_at: Timestamp | null;
}
