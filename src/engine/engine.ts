import { changeAlert, readAlerts, type AlertChangeInput } from './alerts.js';
import type { AlertFilter } from '../store/index.js';
import { detectAnomalies, detectJob, scheduleDetection } from './anomaly-detection.js';
import { RiskInputs } from './risk.js';
import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import { pino, type Logger } from 'pino';
import type { EffectiveConfig } from '../config/types.js';
import { targetSettingsCheck, type ConnectorRegistry } from '../connectors/index.js';
import { LapseError } from '../domain/errors.js';
import { createSealer, type Sealer } from '../secrets/index.js';
import {
  countJobs,
  countOpenFindings,
  NOTIFICATION_JOB_KINDS,
  countOverdueRevocations,
  countOverdueRotations,
  listFindings,
  listReconcileRuns,
  readOperationalGauges,
  recordConfigVersion,
  type FindingFilter,
  type Store,
} from '../store/index.js';
import { ChangeFeed } from './changes.js';
import { transact, withSameTransactionWrite, type AuditEntry, type EngineContext, type SameTransactionWrite } from './context.js';
import { checkAccess } from './access-checks.js';
import { breakGlass, reviewBreakGlass } from './break-glass.js';
import { fetchCredentials } from './credentials.js';
import { requestExtension } from './extensions.js';
import { forceCloseGrant, releaseGrant, revokeGrant } from './grant-ending.js';
import { deprovisionPerson, reenablePerson } from './deprovisioning.js';
import { directoryUseCases, type DirectoryUseCases } from './directory.js';
import { ldapSyncJob, scheduleLdapSync, syncLdap } from './ldap-sync.js';
import { extendJob, provisionJob } from './provisioning.js';
import { reconcileJob, reconcileNow, scheduleReconciliation, type ManualReconcile } from './reconciliation.js';
import { revokeJobs } from './revocation.js';
import { cancelPendingRequest, reviewRequest, submitRequest, timeOutPendingRequest } from './requests.js';
import { hostTrustOf } from './host-trust.js';
import { idempotencyKeys, readModel, type IdempotencyKeys, type ReadModel } from './read-model.js';
import { Scheduler } from './scheduler.js';
import { PolicyInputs } from './policy-inputs.js';
import { slackDirectory, slackUseCases, type SlackUseCases } from './slack.js';
import { webhookUseCases, type WebhookUseCases } from './event-webhooks.js';
import { NotificationChannels, notificationScheduler, notificationUseCases, type NotificationUseCases } from './notifications.js';
import { onboardAccount, vaultAccounts } from './vault-onboarding.js';
import { rekeySealedValues } from './vault-rekey.js';
import { rotateJob } from './vault-rotation.js';
import { checkTargets, type TargetCheck } from './target-checks.js';
import {
  campaignItems,
  closeCampaign,
  decideReviewItems,
  listCampaigns,
  openCampaign,
  reviewDueJob,
  reviewOpenJob,
  reviewQueue,
  scheduleReviews,
} from './access-reviews.js';
import type { ReviewCampaignSettings } from '../domain/access-review.js';
import { generateReport } from './compliance-reports.js';
import type { Principal } from '../domain/principal.js';
import { Telemetry, timedConnectors } from './telemetry.js';

export interface EngineOptions {
  readonly store: Store;
  readonly config: EffectiveConfig;
  readonly connectors: ConnectorRegistry;
  readonly logger?: Logger;
  /**
   * Seals credentials until their holder fetches them. The runtime passes one keyed from config or
   * the data dir; without it a key lives only as long as this process (tests, benchmarks).
   */
  readonly sealer?: Sealer;
  /** Monotonic milliseconds for the policy-input caches; tests pass a clock they move. */
  readonly inputsClock?: () => number;
  /** Tuning for tests and benchmarks; defaults suit production. */
  readonly scheduler?: { batchSize?: number; concurrency?: number; leaseMs?: number; perAccessKey?: number };
}

export interface EngineStats {
  /** Grants whose access should be gone but is not confirmed gone (after a grace second). */
  readonly overdueRevocations: number;
  readonly jobs: Record<string, number>;
}

/**
 * The composition root of the lifecycle: the use-cases bound to one context, the scheduler that
 * runs their timers, and the current configuration (replaced atomically on reload).
 */
export class Engine {
  readonly scheduler: Scheduler;
  /** Runs notification jobs only, apart from the lifecycle's scheduler (docs/notifications.md). */
  readonly notifier: Scheduler;
  /** Deliveries, preferences and test messages (docs/notifications.md). */
  readonly notifications: NotificationUseCases;
  /** People and groups pushed by SCIM or pulled from LDAP (docs/identity.md). */
  readonly directory: DirectoryUseCases;
  /** Slack linking and interactive approvals (docs/notifications.md#slack). */
  readonly slack: SlackUseCases;
  /** Outbound event webhooks: subscriptions, deliveries, replays (docs/notifications.md). */
  readonly webhooks: WebhookUseCases;
  /** 'change' events (an AuditEntry) after each committed state change, for live views. */
  readonly events = new EventEmitter();
  /** Request and grant changes from every replica, for live views (SSE). */
  readonly changes: ChangeFeed;
  /** Connector call timings and scheduler lag as they happen, for /metrics. */
  readonly telemetry = new Telemetry();
  /** Reads of requests and grants for the API and CLI (they never query the store themselves). */
  readonly read: ReadModel;
  /** The API's Idempotency-Key records (src/api/idempotency.ts). */
  readonly idempotencyKeys: IdempotencyKeys;
  private current: EffectiveConfig;
  private readonly context: EngineContext;
  /** The latest target check of each target, with the config version it was made under. */
  private readonly checks = new Map<string, TargetCheck & { readonly version: string }>();
  private readonly channels: NotificationChannels;

  constructor(options: EngineOptions) {
    this.current = options.config;
    const logger = options.logger ?? pino({ level: 'silent' });
    this.channels = new NotificationChannels(logger, { slack: slackDirectory(options.store) });
    this.channels.use(options.config);
    this.context = {
      store: options.store,
      config: () => this.current,
      connectors: timedConnectors(options.connectors, this.telemetry),
      logger,
      poke: () => this.scheduler.poke(),
      pokeNotifier: () => this.notifier.poke(),
      events: this.events,
      sealer: options.sealer ?? createSealer(randomBytes(32)),
      policyInputs: new PolicyInputs(options.inputsClock),
      risk: new RiskInputs((message, detail) => logger.warn(detail, message)),
      channel: (name) => this.channels.get(name),
      telemetry: this.telemetry,
    };
    this.events.setMaxListeners(0);
    this.changes = new ChangeFeed(options.store, this.events, logger);
    const context = this.context;
    this.read = readModel(context);
    this.idempotencyKeys = idempotencyKeys(context);
    this.scheduler = new Scheduler({
      store: options.store,
      logger,
      pollIntervalMs: () => this.current.scheduler.pollIntervalMs,
      handlers: {
        provision: (job, worker) => provisionJob(context, job, worker),
        request_timeout: (job) => timeOutPendingRequest(context, job.subjectId),
        reconcile: (job, worker) => reconcileJob(context, job, worker),
        extend: (job, worker) => extendJob(context, job, worker),
        rotate: (job, worker) => rotateJob(context, job, worker),
        ldap_sync: (job, worker) => ldapSyncJob(context, job, worker),
        review_open: (job, worker) => reviewOpenJob(context, job, worker),
        review_due: (job, worker) => reviewDueJob(context, job, worker),
        detect: (job, worker) => detectJob(context, job, worker),
      },
      batch: { kinds: ['expire', 'revoke'], run: (jobs, worker) => revokeJobs(context, jobs, worker) },
      onClaimed: (jobs) => this.telemetry.jobsClaimed(jobs),
      kinds: { except: NOTIFICATION_JOB_KINDS },
      ...options.scheduler,
    });
    this.notifier = notificationScheduler(context, () => this.current.scheduler.pollIntervalMs);
    this.notifications = notificationUseCases(context);
    this.directory = directoryUseCases(context);
    this.slack = slackUseCases(context);
    this.webhooks = webhookUseCases(context, async () => {
      if (this.scheduler.workerKey !== null) await this.notifier.start();
    });
  }

  get config(): EffectiveConfig {
    return this.current;
  }

  /** Seals secrets held for a while (credentials, MFA seeds); see src/secrets/sealer.ts. */
  get sealer(): Sealer {
    return this.context.sealer;
  }

  /** The connectors this engine knows (routes that serve connector artefacts, like an SSH KRL). */
  get connectors(): ConnectorRegistry {
    return this.context.connectors;
  }

  get store(): Store {
    return this.context.store;
  }

  /** Records the config version (so every decision's policy version can be looked up) and starts the scheduler. */
  async start(): Promise<void> {
    this.validateConnectors(this.current);
    await this.recordConfigVersion(this.current, 'config.loaded');
    await scheduleReconciliation(this.context);
    await scheduleLdapSync(this.context);
    await scheduleReviews(this.context);
    await scheduleDetection(this.context);
    await this.scheduler.start();
    await this.startNotifier();
  }

  /**
   * The notification worker runs only where notifications are configured. NB. On PGlite every
   * query shares one session, so an idle worker's polls would cost the lifecycle's jobs time.
   */
  private async startNotifier(): Promise<void> {
    const { rules, channels } = this.current.notifications;
    if (rules.length > 0 || channels.size > 0 || (await this.webhooks.list()).length > 0) await this.notifier.start();
  }

  async stop(): Promise<void> {
    await this.slack.idle();
    await this.changes.stop();
    await Promise.all([this.scheduler.stop(), this.notifier.stop()]);
    await this.channels.close();
  }

  /** Swaps in a new configuration; requests decided from now on use it. Audited. */
  async reloadConfig(next: EffectiveConfig): Promise<void> {
    this.validateConnectors(next);
    const previous = this.current.version;
    this.current = next;
    this.channels.use(next);
    await this.recordConfigVersion(next, 'config.reloaded', previous);
    await scheduleReconciliation(this.context);
    await scheduleLdapSync(this.context);
    await scheduleReviews(this.context);
    await scheduleDetection(this.context);
    if (this.scheduler.workerKey !== null) await this.startNotifier();
    this.context.logger.info({ version: next.version, previous }, 'configuration reloaded');
  }

  /** Audits a rejected reload (the old config stays in force). */
  async configRejected(error: unknown): Promise<void> {
    const message = error instanceof LapseError ? error.describe() : String(error);
    this.context.logger.error({ err: error }, 'new configuration rejected; keeping the one in force');
    await transact(this.context, (unit) =>
      unit.audit({ action: 'config.rejected', actor: 'system', data: { inForce: this.current.version, error: message.slice(0, 4000) } }),
    );
  }

  submit = (input: Parameters<typeof submitRequest>[1]) => submitRequest(this.context, input);
  review = (input: Parameters<typeof reviewRequest>[1]) => reviewRequest(this.context, input);
  cancel = (input: Parameters<typeof cancelPendingRequest>[1]) => cancelPendingRequest(this.context, input);
  extend = (input: Parameters<typeof requestExtension>[1]) => requestExtension(this.context, input);
  release = (input: Parameters<typeof releaseGrant>[1]) => releaseGrant(this.context, input);
  /** Deprovisioning (docs/identity.md): disables a person and ends their sessions, tokens, pending requests and grants. */
  disableUser = (input: Parameters<typeof deprovisionPerson>[1]) => deprovisionPerson(this.context, input);
  /** Lets a disabled person sign in again; nothing they held comes back. */
  enableUser = (input: Parameters<typeof reenablePerson>[1]) => reenablePerson(this.context, input);
  /** One LDAP sync now (identity.ldap; docs/identity.md). */
  syncLdap = (options: Parameters<typeof syncLdap>[1] = {}) => syncLdap(this.context, options);
  revoke = (input: Parameters<typeof revokeGrant>[1]) => revokeGrant(this.context, input);
  forceClose = (input: Parameters<typeof forceCloseGrant>[1]) => forceCloseGrant(this.context, input);
  breakGlass = (input: Parameters<typeof breakGlass>[1]) => breakGlass(this.context, input);
  reviewBreakGlass = (input: Parameters<typeof reviewBreakGlass>[1]) => reviewBreakGlass(this.context, input);
  fetchCredentials = (input: Parameters<typeof fetchCredentials>[1]) => fetchCredentials(this.context, input);
  /** Hands Lapse a vault account's current password once; it is rotated at once (docs/vault.md). */
  onboardVaultAccount = (input: Parameters<typeof onboardAccount>[1]) => onboardAccount(this.context, input);
  /** The vault's accounts and their states (no passwords). */
  vaultAccounts = () => vaultAccounts(this.context);
  /** Re-wraps every sealed value under the current key-encryption key (docs/vault.md, "Changing the KEK"). */
  rekeyVault = (by: string) => rekeySealedValues(this.context, by);
  /** Vault accounts whose rotation keeps failing: the `lapse_vault_rotations_overdue` metric. */
  overdueRotations = () => countOverdueRotations(this.context.store.db);
  checkAccess = (principalId: string, target: string, entitlement: string) => checkAccess(this.context, principalId, target, entitlement);
  /** Opens an access-review campaign now (an admin's one-off; lapse.yaml's open on schedule); docs/reviews.md. */
  openReviewCampaign = (settings: ReviewCampaignSettings, by: string) => openCampaign(this.context, settings, { origin: 'api', by });
  /** Decides review items (one decision, one justification, all or nothing). */
  decideReviewItems = (input: Parameters<typeof decideReviewItems>[1]) => decideReviewItems(this.context, input);
  /** Closes a campaign: unanswered items get its default. */
  closeReviewCampaign = (input: Parameters<typeof closeCampaign>[1]) => closeCampaign(this.context, input);
  reviewCampaigns = (filter: Parameters<typeof listCampaigns>[1] = {}) => listCampaigns(this.context, filter);
  reviewQueue = (reviewer: Principal, options: Parameters<typeof reviewQueue>[2] = {}) => reviewQueue(this.context, reviewer, options);
  reviewCampaignItems = (campaignId: string) => campaignItems(this.context, campaignId);
  /** A compliance report over a period, with its audit-chain cover (docs/compliance.md). Audited. */
  complianceReport = (input: Parameters<typeof generateReport>[1]) => generateReport(this.context, input);
  /** Reconciles one target, or all, now; see docs/reconciliation.md. */
  reconcile = (target?: string, options: ManualReconcile = {}) => reconcileNow(this.context, target, options);
  listFindings = (filter: FindingFilter = {}) => listFindings(this.context.store.db, filter);
  /** Anomaly alerts, newest first (docs/monitoring.md#alerts). */
  listAlerts = (filter: AlertFilter) => readAlerts(this.context, filter);
  changeAlert = (input: AlertChangeInput) => changeAlert(this.context, input);
  /** Runs the anomaly detectors over the audit events written since their last run (the `detect` job does this on its own). */
  detectAnomalies = async () => (await detectAnomalies(this.context)).raised;
  listReconcileRuns = (filter: { target?: string; limit?: number } = {}) => listReconcileRuns(this.context.store.db, filter);
  /** Open reconciliation findings by kind: standing access no grant covers is the number to alert on. */
  openFindings = () => countOpenFindings(this.context.store.db);
  /** Live grants by status, pending requests, audit chain and checkpoint position (for /metrics). */
  operationalGauges = () => readOperationalGauges(this.context.store.db);

  /**
   * Runs the target checks (one target or all) with the connectors' own privilege checks, logs each
   * failure with what is missing, and keeps the results for /readyz and the admin portal. Never
   * throws for a failing target (only for an unknown name): Lapse keeps serving the others.
   */
  async checkTargets(target?: string): Promise<TargetCheck[]> {
    const config = this.current;
    const results = await checkTargets(config, this.context.connectors, { target });
    for (const result of results) {
      this.checks.set(result.target, { ...result, version: config.version });
      if (result.ok) this.context.logger.info({ target: result.target, connector: result.connector, ms: result.durationMs }, 'target check passed');
      else this.context.logger.warn({ target: result.target, connector: result.connector, code: result.code, problem: result.problem }, 'target check failed');
    }
    return results;
  }

  /**
   * The latest check of every target in the config in force; null for a target not checked since
   * it was (re)configured.
   */
  targetChecks(): { target: string; connector: string; check: TargetCheck | null }[] {
    return [...this.current.targets.values()].map((target) => {
      const check = this.checks.get(target.name);
      return { target: target.name, connector: target.connector, check: check?.version === this.current.version ? check : null };
    });
  }

  /**
   * Runs one use-case (`run`) so that `write` commits in the same transaction as its change; see
   * withSameTransactionWrite (the API's Idempotency-Key records).
   */
  /** What the hosts of a target fetch to trust its credentials (the ssh CA key and KRL); "not found" for others. */
  hostTrust = (targetName: string) => hostTrustOf(this.context, targetName, 'ssh');

  withSameTransactionWrite = <T>(write: SameTransactionWrite, run: () => Promise<T>) => withSameTransactionWrite(write, run);

  /** Audits a security-relevant action outside the lifecycle (refused authentication, token use). */
  async recordSecurityEvent(entry: AuditEntry): Promise<void> {
    await transact(this.context, (unit) => unit.audit(entry), { carriesCallerWrite: false });
  }

  async stats(): Promise<EngineStats> {
    return { overdueRevocations: await this.overdueRevocations(), jobs: await countJobs(this.context.store.db) };
  }

  /**
   * Grants whose access should be gone but is not confirmed gone: active more than a second past
   * expiry, or revoking for more than a second. The `lapse_revocations_overdue` metric and the dashboard.
   */
  overdueRevocations = () => countOverdueRevocations(this.context.store.db, 1_000);

  private validateConnectors(config: EffectiveConfig): void {
    const check = targetSettingsCheck(this.context.connectors);
    const problems = [...config.targets.values()].flatMap((target) => check(target));
    if (problems.length > 0) {
      throw new LapseError('config_invalid', `${config.source}: connector settings are not valid: ${problems.length} problem(s)`, {
        where: config.source,
        problems,
        hint: "See docs/connectors/ for each connector's settings.",
      });
    }
  }

  private async recordConfigVersion(config: EffectiveConfig, action: string, previous?: string): Promise<void> {
    await transact(this.context, async (unit) => {
      await recordConfigVersion(unit.tx, { version: config.version, source: config.source, firstLoadedAt: unit.now });
      await unit.audit({ action, actor: 'system', data: { version: config.version, source: config.source, ...(previous ? { previous } : {}) } });
    });
  }
}
