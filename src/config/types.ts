import type { AuditExportSettings } from '../domain/audit-export.js';
import type { DetectorSettings } from '../domain/anomalies.js';
import type { SubjectSet } from '../domain/principal.js';
import type { Condition, PolicySet } from '../domain/policy/index.js';
import type { NotificationEventName } from '../domain/notifications.js';
import type { ReviewCampaignSettings } from '../domain/access-review.js';

/**
 * The configuration as the rest of Lapse sees it, after lapse.yaml was parsed, validated, its
 * secret references resolved and its CEL expressions compiled. Immutable: a reload builds a new one.
 */
export interface EffectiveConfig {
  /** sha256 (hex) of the canonical config with secret references unresolved: the "policy version". */
  readonly version: string;
  /** The file it came from (for messages), or '<inline>'. */
  readonly source: string;
  readonly targets: ReadonlyMap<string, TargetConfig>;
  readonly policies: PolicySet;
  readonly breakGlass: BreakGlassConfig;
  readonly roles: { readonly admins: SubjectSet; readonly auditors: SubjectSet };
  readonly auth: AuthConfig;
  readonly audit: AuditConfig;
  readonly secrets: SecretsConfig;
  readonly scheduler: SchedulerConfig;
  readonly reconcile: ReconcileConfig;
  readonly integrations: IntegrationsConfig;
  readonly notifications: NotificationsConfig;
  readonly risk: RiskConfig;
  readonly alerts: AlertsConfig;
  /** Access-review campaigns that open on a schedule (docs/reviews.md). */
  readonly reviews: readonly ReviewCampaignSettings[];
  /** Where people and groups come from besides sign-in (docs/identity.md). */
  readonly identity: IdentityConfig;
}

/** Inputs to the server-computed risk (docs/monitoring.md#risk). */
export interface RiskConfig {
  /** Paths of operator-supplied MaxMind databases; unset: no country/ASN signals. */
  readonly countryDatabase: string | undefined;
  readonly asnDatabase: string | undefined;
  /** Device posture values a trusted proxy may send that count as trusted; unset: posture is not read. */
  readonly trustedDevicePostures: ReadonlySet<string> | undefined;
}

/** The anomaly detectors (docs/monitoring.md#alerts). */
export interface AlertsConfig extends DetectorSettings {
  readonly enabled: boolean;
  /** How often the detector worker reads new audit events and sweeps for overdue revocations. */
  readonly intervalMs: number;
}

/** `identity:` as the engine uses it: secrets resolved, durations in ms. */
export interface IdentityConfig {
  readonly ldap: LdapSyncConfig | undefined;
}

export interface LdapSyncConfig {
  readonly url: string;
  readonly startTls: boolean;
  readonly bindDn: string;
  /** Resolved from its reference; never logged. */
  readonly bindPassword: string;
  /** PEM bundle to verify the server with (default: the system's CAs). */
  readonly ca: string | undefined;
  readonly intervalMs: number;
  readonly timeoutMs: number;
  readonly maxEntries: number;
  readonly users: {
    readonly baseDn: string;
    readonly filter: string;
    readonly nameAttribute: string;
    readonly displayNameAttribute: string;
    readonly emailAttribute: string;
    readonly disabledFilter?: string | undefined;
  };
  readonly groups?: { readonly baseDn: string; readonly filter: string; readonly nameAttribute: string; readonly memberAttribute: string } | undefined;
}

/** Where notifications go (docs/notifications.md). */
export interface NotificationsConfig {
  readonly channels: ReadonlyMap<string, ChannelConfig>;
  readonly rules: readonly NotificationRule[];
  readonly approvals: {
    /** Remind the approvers of a stage still open after this long. */
    readonly remindAfterMs: number | undefined;
    /** Tell `escalateTo` of a stage still open after this long. */
    readonly escalateAfterMs: number | undefined;
    readonly escalateTo: SubjectSet;
  };
  /** How long before a grant ends its holder is told (with a link to extend). */
  readonly endingSoonMs: number;
  /** How outbound event webhooks are sent (subscriptions live in the database). */
  readonly webhooks: { readonly timeoutMs: number; readonly retry: ChannelRetry };
}

/** One channel; a union on `type` as Slack, Teams and webhooks join email. */
export type ChannelConfig = EmailChannelConfig | SlackChannelConfig | TeamsChannelConfig;

/** A Slack app's bot (docs/notifications.md#slack): DMs to linked people, posts to Slack channels. */
export interface SlackChannelConfig {
  readonly name: string;
  readonly type: 'slack';
  /** The bot token (xoxb-…), resolved from a secret reference. Never log it. */
  readonly token: string;
  /** Verifies interaction payloads; resolved from a secret reference. Never log it. */
  readonly signingSecret: string;
  /** Policies whose approval requests carry Approve / Deny buttons (none by default). */
  readonly interactivePolicies: ReadonlySet<string>;
  /** The Web API's base URL, ending in `/` (https://slack.com/api/, or a local fake). */
  readonly apiUrl: string;
  readonly timeoutMs: number;
  readonly retry: ChannelRetry;
}

/** Microsoft Teams: an Adaptive Card posted to a Workflows / incoming-webhook URL. */
export interface TeamsChannelConfig {
  readonly name: string;
  readonly type: 'teams';
  /** Resolved from a secret reference (the URL is the credential). Never log it. */
  readonly url: string;
  readonly ca: string | undefined;
  readonly timeoutMs: number;
  readonly retry: ChannelRetry;
}

export interface EmailChannelConfig {
  readonly name: string;
  readonly type: 'email';
  readonly from: string;
  readonly smtp: {
    readonly host: string;
    readonly port: number;
    /** TLS from the first byte; otherwise STARTTLS is required unless allowInsecure. */
    readonly secure: boolean;
    readonly user: string | undefined;
    /** Resolved from a secret reference. Never log it. */
    readonly password: string | undefined;
    /** PEM of a CA to trust for this server (besides the system's). */
    readonly ca: string | undefined;
    /** Plain SMTP (loopback only): warned about at start. */
    readonly allowInsecure: boolean;
    readonly timeoutMs: number;
    /** Pooled SMTP connections (messages sent at once). */
    readonly connections: number;
  };
  readonly retry: ChannelRetry;
}

export interface ChannelRetry {
  /** Attempts before a delivery is given up as failed. */
  readonly attempts: number;
  readonly backoffMinMs: number;
  readonly backoffMaxMs: number;
}

export interface NotificationRule {
  /** Position in notifications.rules (for messages). */
  readonly index: number;
  readonly events: ReadonlySet<NotificationEventName>;
  readonly channels: readonly string[];
  readonly to: {
    /** The people the event is about (approvers of the open stage, the requester). */
    readonly audience: boolean;
    readonly users: readonly string[];
    readonly groups: readonly string[];
    readonly addresses: readonly string[];
    /** Slack channel ids (C…) that Slack channels post to. */
    readonly slackChannels: readonly string[];
  };
  /** Entitlement patterns; unset: any. */
  readonly targets: readonly string[] | undefined;
  /** Policy names; unset: any. */
  readonly policies: readonly string[] | undefined;
  readonly when: Condition | undefined;
}

/** Sign-in settings (docs/authentication.md). */
export interface AuthConfig {
  /** The URL people and the IdP use to reach Lapse; undefined means "the address the request came in on". */
  readonly publicUrl: string | undefined;
  readonly oidc: OidcConfig | undefined;
  readonly local: { readonly enabled: boolean };
  readonly sessions: { readonly idleTimeoutMs: number; readonly absoluteTimeoutMs: number };
  readonly loginLimits: { readonly perAccountPerHour: number; readonly perIpPerMinute: number };
  /**
   * Reverse proxies whose X-Forwarded-For Lapse believes (addresses or CIDR ranges). Empty: the
   * client address is the connection's. Read when the server starts.
   */
  readonly trustedProxies: readonly string[];
}

export interface OidcConfig {
  readonly issuer: string;
  readonly clientId: string;
  /** Resolved from a secret reference; undefined for a public client. Never log it. */
  readonly clientSecret: string | undefined;
  readonly scopes: readonly string[];
  readonly groupsClaim: string;
  readonly usernameClaim: string;
  /** Plain-http issuer allowed (loopback only, for tests and local trials); warned about at start. */
  readonly allowInsecureHttp: boolean;
}

export interface TargetConfig {
  readonly name: string;
  /** Connector type, e.g. "noop", "postgres". */
  readonly connector: string;
  readonly description: string;
  /** Connector settings with secret references already resolved. Never log these. */
  readonly settings: Readonly<Record<string, unknown>>;
  readonly labels: Readonly<Record<string, string>>;
  readonly entitlements: ReadonlyMap<string, EntitlementConfig>;
}

export interface EntitlementConfig {
  readonly name: string;
  readonly target: string;
  readonly description: string;
  /** Connector-specific settings for this entitlement (roles, grants, key patterns…). */
  readonly settings: Readonly<Record<string, unknown>>;
  readonly labels: Readonly<Record<string, string>>;
  /**
   * Set for a vault check-out: the entitlement lends an existing account's password (docs/vault.md)
   * instead of asking the connector to provision access; the connector only rotates it.
   */
  readonly checkout?: CheckoutConfig;
}

/** Characters a generated password is drawn from. */
export const PASSWORD_ALPHABETS = ['alphanumeric', 'base64url', 'symbols'] as const;
export type PasswordAlphabet = (typeof PASSWORD_ALPHABETS)[number];

/** A shared privileged account Lapse holds, lends and rotates (docs/vault.md). */
export interface CheckoutConfig {
  /** The account at the target (a role, a user name), as the connector names it. */
  readonly account: string;
  /** One holder at a time (default); false lets several hold it and rotates after the last. */
  readonly exclusive: boolean;
  /** What a request gets while another grant holds an exclusive account. */
  readonly whenCheckedOut: 'queue' | 'refuse';
  /** Rotate this often when nobody holds it; undefined: only after each check-out. */
  readonly rotateEveryMs: number | undefined;
  readonly password: { readonly length: number; readonly alphabet: PasswordAlphabet };
}

export interface BreakGlassConfig {
  readonly enabled: boolean;
  readonly subjects: SubjectSet;
  /** Entitlement patterns ("prod-db/*") break-glass may grant. */
  readonly entitlements: readonly string[];
  readonly maxDurationMs: number;
  readonly minReasonLength: number;
}

export interface AuditConfig {
  /** PEM Ed25519 private key, resolved from a secret reference; undefined means "generate into the data dir". */
  readonly signingKeyPem: string | undefined;
  /** Write a signed checkpoint after this many events… */
  readonly checkpointEvery: number;
  /** …or after this long, whichever comes first. */
  readonly checkpointIntervalMs: number;
  /** Sinks and witnesses the chain and its checkpoints are streamed to (docs/monitoring.md). */
  readonly export: AuditExportSettings;
}

export interface SecretsConfig {
  /** 32 random bytes (base64) sealing held secrets; undefined means "generate into the data dir". */
  readonly encryptionKey: string | undefined;
  /** Keys from before a rotation, still used to open what they sealed. */
  readonly previousEncryptionKeys: readonly string[];
}

export interface SchedulerConfig {
  /** Longest wait between polls when nothing is due (wake-ups come earlier via notifications). */
  readonly pollIntervalMs: number;
  /** Per-call timeout for connector provision/revoke. */
  readonly connectorTimeoutMs: number;
  /** Provision attempts before a grant is given up (and cleaned up) as failed. */
  readonly provisionAttempts: number;
  /** Revoke retry backoff bounds; revokes are retried forever. */
  readonly revokeBackoffMinMs: number;
  readonly revokeBackoffMaxMs: number;
  /** Provision and target-extension retry backoff bounds (default: the revoke bounds). */
  readonly provisionBackoffMinMs: number;
  readonly provisionBackoffMaxMs: number;
}

export interface ReconcileConfig {
  /** How often a target is reconciled unless it says otherwise. */
  readonly intervalMs: number;
  /** The settings in force for each target, global defaults already applied. */
  readonly targets: ReadonlyMap<string, TargetReconcileConfig>;
}

export interface TargetReconcileConfig {
  /** Whether the scheduler reconciles this target (`lapse reconcile` can still run it by hand). */
  readonly enabled: boolean;
  /** Remove standing access no live grant covers (only within the target's configured entitlements). */
  readonly remediate: boolean;
  readonly intervalMs: number;
}

/** Systems asked for facts policies read (docs/integrations.md); secrets resolved, durations in ms. */
export interface IntegrationsConfig {
  readonly people: { readonly emailDomain: string | undefined; readonly emails: Readonly<Record<string, string>> };
  readonly pagerduty: PagerDutyConfig | undefined;
  readonly oncallWebhook: OncallWebhookConfig | undefined;
  readonly jira: JiraConfig | undefined;
  readonly servicenow: ServiceNowConfig | undefined;
}

/** Where an integration is and how long Lapse waits for it and reuses its answers. */
export interface IntegrationEndpoint {
  readonly url: string;
  /** PEM CA bundle to verify the server against; undefined means the system roots. */
  readonly ca: string | undefined;
  readonly timeoutMs: number;
  readonly cacheTtlMs: number;
}

export interface PagerDutyConfig extends IntegrationEndpoint {
  /** REST API token; never log it. */
  readonly token: string;
  /** Principal id → PagerDuty user id; others are found by email. */
  readonly users: Readonly<Record<string, string>>;
  /** Service name (as targets' `service` label) → the escalation policies and schedules that cover it. */
  readonly services: Readonly<Record<string, { readonly escalationPolicies: readonly string[]; readonly schedules: readonly string[] }>>;
}

export interface OncallWebhookConfig extends IntegrationEndpoint {
  /** HMAC key for Lapse-Signature; never log it. */
  readonly secret: string;
}

export interface JiraConfig extends IntegrationEndpoint {
  readonly email: string;
  readonly apiToken: string;
  readonly openStatuses: readonly string[];
  readonly accounts: Readonly<Record<string, string>>;
}

export interface ServiceNowConfig extends IntegrationEndpoint {
  readonly auth: { readonly kind: 'basic'; readonly username: string; readonly password: string } | { readonly kind: 'bearer'; readonly token: string };
  readonly table: string;
  readonly openStates: readonly string[];
}
