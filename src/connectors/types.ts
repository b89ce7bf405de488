import type { EntitlementConfig, TargetConfig } from '../config/types.js';

/**
 * The one interface every connector implements. Lapse calls it outside any database transaction,
 * with a deadline (the AbortSignal), and may call provision or revoke more than once for the same
 * grant after a crash: both MUST be idempotent, keyed by `grantId`.
 */
export interface Connector {
  /** The `connector:` name in lapse.yaml. */
  readonly type: string;

  /**
   * Checks a target's settings and each entitlement's settings offline; returns problems as
   * "<path>: what is wrong, how to fix it" strings (empty when valid).
   */
  validateSettings(target: TargetConfig): string[];

  /**
   * Checks the values a requester supplies for an entitlement (e.g. `sshPublicKey`) before the
   * request is stored; returns problems as "parameters.<name>: what is wrong" strings. Connectors
   * that take no parameters omit it, and then any parameter is refused.
   */
  validateParameters?(target: TargetConfig, entitlement: EntitlementConfig, parameters: Readonly<Record<string, string>>): string[];

  /** Checks connectivity and the privileges Lapse needs at the target; throws a LapseError saying which is missing. */
  checkTarget(target: TargetConfig, signal: AbortSignal): Promise<void>;

  /**
   * Grants that share an access key give the same access at the target (e.g. "role R for user U")
   * and are reference-counted: ending one must not remove what another still covers. Connectors
   * that create a separate account per grant return a key unique to the grant.
   */
  accessKey(grant: GrantSpec): string;

  provision(grant: GrantSpec, signal: AbortSignal): Promise<ProvisionResult>;

  /**
   * The grant was extended: move any expiry the target enforces itself (a role's VALID UNTIL, a
   * certificate's valid-before) to `grant.notAfter`, so access stays continuous. May return fresh
   * credentials (a certificate cannot be changed, only reissued) for the holder to fetch once.
   * Idempotent. Connectors with no target-side expiry omit it.
   */
  extend?(grant: GrantSpec, handle: AccessHandle | null, signal: AbortSignal): Promise<Pick<ProvisionResult, 'credentials'> | void>;

  /**
   * The grant became active: set any expiry the target enforces itself to `grant.notAfter`, now the
   * grant's actual end. (Provision runs before the grant's clock starts, so its `notAfter` allows
   * for the time until activation.) Idempotent. Connectors that cannot change that expiry in place
   * (a certificate) omit it.
   */
  settleExpiry?(grant: GrantSpec, handle: AccessHandle | null, signal: AbortSignal): Promise<void>;

  /**
   * Removes the access and ends live sessions where the target allows it. Succeeds if already gone.
   * A target that is eventually consistent (a cloud's IAM) returns `propagationPending` when it
   * accepted the removal but its read-back does not show it yet: the grant then stays `revoking`
   * ("revoked, propagation pending") and Lapse calls revoke again after `recheckInMs` until a call
   * returns without it. So revoke must re-issue the removal if needed, then read back.
   */
  revoke(grant: GrantSpec, handle: AccessHandle | null, signal: AbortSignal): Promise<RevokeResult | void>;

  /** What access exists at the target now, for reconciliation. */
  listAccess(target: TargetConfig, signal: AbortSignal): Promise<CurrentAccess[]>;

  /**
   * Removes access found by `listAccess` that no live grant covers (reconciliation with
   * `remediate: true`). Only ever called with an entry `listAccess` returned for the same target;
   * succeeds if it is already gone.
   */
  removeAccess(target: TargetConfig, access: CurrentAccess, signal: AbortSignal): Promise<void>;

  /**
   * What the target's hosts fetch from Lapse to trust its credentials and to refuse revoked ones
   * (an SSH user CA's public key and key revocation list), served without authentication.
   * Connectors whose targets fetch nothing omit it.
   */
  readonly hostTrust?: HostTrust;

  /**
   * Changing the password of an existing account Lapse holds in its vault (a `checkout`
   * entitlement, docs/vault.md). Connectors that cannot omit it, and such entitlements are refused
   * on their targets.
   */
  readonly rotation?: PasswordRotation;
}

/**
 * The vault's view of a target: set, check and end the use of one account's password. Lapse calls
 * these outside any transaction, with a deadline, and sets only passwords it has sealed and stored
 * first, so a call repeated after a crash sets the same password again. A password must never
 * appear in a log line, an error message, or where the target logs statements.
 * NB. Checkout entitlements are the engine's, not the connector's: `validateSettings`,
 * `listAccess` and the rest skip them (`connectorEntitlements`).
 */
export interface PasswordRotation {
  /** Problems with managing `account` on this target ("<where>: what is wrong, how to fix it"), checked at config load. */
  validateAccount(target: TargetConfig, account: string, where: string): string[];
  /** Sets the account's password, logged in as Lapse's own account. Idempotent. */
  rotatePassword(target: TargetConfig, account: string, password: string, signal: AbortSignal): Promise<void>;
  /**
   * Logs in as the account with the password: true when the target accepts it, false when it
   * refuses the password; throws (a LapseError) when it cannot tell (unreachable, timeout).
   */
  verifyPassword(target: TargetConfig, account: string, password: string, signal: AbortSignal): Promise<boolean>;
  /** Ends the account's open sessions where the target allows it. Succeeds when there are none. */
  endSessions(target: TargetConfig, account: string, signal: AbortSignal): Promise<void>;
  /** What a holder needs beside the password to log in (host, port, database…). Nothing secret. */
  loginDetails(target: TargetConfig, account: string): Readonly<Record<string, string>>;
}

/** The entitlements a connector serves itself: every one but the vault's checkouts. */
export function connectorEntitlements(target: TargetConfig): EntitlementConfig[] {
  return [...target.entitlements.values()].filter((entitlement) => entitlement.checkout === undefined);
}

/** What hosts of a target fetch to trust Lapse's credentials (GET /api/v1/ssh/:target/...). */
export interface HostTrust {
  /** The public key of the CA that signs credentials (one OpenSSH public key line). */
  caPublicKey(target: TargetConfig): Promise<string>;
  /** The current revocation list (an OpenSSH KRL). */
  revocationList(target: TargetConfig, signal: AbortSignal): Promise<Buffer>;
}

export interface GrantSpec {
  readonly grantId: string;
  readonly principalId: string;
  readonly target: TargetConfig;
  readonly entitlement: EntitlementConfig;
  readonly durationMs: number;
  /**
   * Latest moment the access may live: targets with their own expiry (VALID UNTIL, certificate
   * validity) use it as a backstop behind Lapse's revoke. The grant's end once it is active; at
   * provision, before its clock starts, the end it would have if activated within a minute.
   */
  readonly notAfter: Date;
  /**
   * Values the requester supplied with the request (e.g. `sshPublicKey`), already accepted by
   * `validateParameters`. Empty for most entitlements.
   */
  readonly parameters: Readonly<Record<string, string>>;
}

/** Whatever the connector needs to find the access again (user name, binding name…). No secrets. */
export type AccessHandle = Readonly<Record<string, unknown>>;

export interface ProvisionResult {
  readonly handle: AccessHandle;
  /**
   * Secrets for the requester (an ephemeral account's password, a signed certificate…). Lapse
   * encrypts them at rest, hands them out once to the grant's principal, then erases them; never
   * log them and never put them in the handle. A repeated provision (after a crash) must issue
   * fresh ones, since the first may have been lost.
   */
  readonly credentials?: Readonly<Record<string, string>>;
}

/** What revoke reports when the target accepted the removal but cannot confirm it yet. */
export interface RevokeResult {
  /** Why the removal is not confirmed yet (shown on the grant and in the audit event); absent when it is. */
  readonly propagationPending?: string;
  /** When to call revoke again to read back (bounded by the scheduler's revoke backoff); default: the backoff's minimum. */
  readonly recheckInMs?: number;
}

export interface CurrentAccess {
  /** The account or identity at the target (role name, user name, certificate serial…). */
  readonly account: string;
  /** The Lapse principal, when the target tells it; otherwise the account name. */
  readonly principalId: string;
  readonly entitlement: string;
  /** The grant this access belongs to, when the target records it (labels, comments, names). */
  readonly grantId: string | null;
}

/** The connectors a running Lapse knows, by type name. */
export interface ConnectorRegistry {
  get(type: string): Connector | undefined;
  types(): string[];
}

export function connectorRegistry(connectors: readonly Connector[]): ConnectorRegistry {
  const byType = new Map(connectors.map((connector) => [connector.type, connector]));
  return { get: (type) => byType.get(type), types: () => [...byType.keys()].sort() };
}

/** Config-load check of one target against the registry: its connector exists and accepts the settings. */
export function targetSettingsCheck(registry: ConnectorRegistry): (target: TargetConfig) => string[] {
  return (target) => {
    const connector = registry.get(target.connector);
    if (!connector) return [`targets.${target.name}.connector: unknown connector "${target.connector}" (known: ${registry.types().join(', ')})`];
    return [...connector.validateSettings(target), ...checkoutProblems(registry, connector, target)];
  };
}

/** Checkout entitlements need a connector that can rotate passwords, and an account it may manage. */
function checkoutProblems(registry: ConnectorRegistry, connector: Connector, target: TargetConfig): string[] {
  const problems: string[] = [];
  for (const entitlement of target.entitlements.values()) {
    if (!entitlement.checkout) continue;
    const where = `targets.${target.name}.entitlements.${entitlement.name}.checkout`;
    if (!connector.rotation) {
      const able = registry
        .types()
        .filter((type) => registry.get(type)?.rotation)
        .join(', ');
      problems.push(`${where}: connector ${connector.type} cannot rotate passwords, so it cannot lend an account (connectors that can: ${able})`);
      continue;
    }
    problems.push(...connector.rotation.validateAccount(target, entitlement.checkout.account, `${where}.account`));
  }
  return problems;
}
