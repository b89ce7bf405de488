import type { RiskInputs } from './risk.js';
import type { Sealer } from '../secrets/index.js';
import { AsyncLocalStorage } from 'node:async_hooks';
import type { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { auditedTransaction } from '../audit/index.js';
import type { EffectiveConfig, EntitlementConfig, TargetConfig } from '../config/types.js';
import type { Connector, ConnectorRegistry } from '../connectors/index.js';
import { LapseError } from '../domain/errors.js';
import type { NotificationChannel } from '../notify/index.js';
import { notifyOnCommit, type AuditRecord, type Store, type StoreTransaction } from '../store/index.js';
import type { PolicyInputs } from './policy-inputs.js';
import { failpoint } from './failpoints.js';
import { recordNotifications } from './notification-outbox.js';
import type { Telemetry } from './telemetry.js';

/** What every use-case may touch. Nothing else: no globals, no hidden singletons. */
export interface EngineContext {
  readonly store: Store;
  readonly config: () => EffectiveConfig;
  readonly connectors: ConnectorRegistry;
  readonly logger: Logger;
  /** Tells the local scheduler there may be work due now (other replicas hear it via NOTIFY). */
  readonly poke: () => void;
  /** Tells the local notification worker there are deliveries to send now. */
  readonly pokeNotifier: () => void;
  /** Emits 'change' with each audit entry once its transaction committed (live updates, tests). */
  readonly events: EventEmitter;
  /** Seals credentials held for their principal until fetched. */
  readonly sealer: Sealer;
  /** On-call and ticket lookups for policies, cached per configuration. */
  readonly policyInputs: PolicyInputs;
  /** The MaxMind readers risk uses, opened once per configuration. */
  readonly risk: RiskInputs;
  /** The notification channel of this name in the config in force (built once per config). */
  readonly channel: (name: string) => NotificationChannel | undefined;
  readonly telemetry: Telemetry;
}

/** What a use-case records in the audit log (the store's AuditRecord; src/audit chains it). */
export type AuditEntry = AuditRecord;

export interface UnitOfWork {
  readonly tx: StoreTransaction;
  /** The database's clock at the start of this transaction: one "now" for the whole change. */
  readonly now: Date;
  /** Records an audit event in this transaction: it commits with the state change or not at all. */
  audit(entry: AuditEntry): Promise<void>;
  /** Wakes schedulers after commit (here and, through NOTIFY, on other replicas). */
  wake(): void;
}

/**
 * A write that must commit together with the change a caller asked for, or not at all: the API's
 * record of an Idempotency-Key with its response (src/api/idempotency.ts). It gets the value the
 * change's work returned, inside that transaction.
 */
export type SameTransactionWrite = (tx: StoreTransaction, value: unknown) => Promise<void>;

const callerWrites = new AsyncLocalStorage<{ write: SameTransactionWrite; committed: boolean }>();

/**
 * Runs `run` (one use-case) so that the first state change it commits carries `write` in the same
 * transaction; says whether one did. Records of refusals (auditRefusal) never carry it.
 * NB. This is what makes a retried request exactly-once across a crash: the change and the record
 * that it was made under this key are one commit, so no moment exists where one is there without
 * the other.
 */
export async function withSameTransactionWrite<T>(write: SameTransactionWrite, run: () => Promise<T>): Promise<{ value: T; written: boolean }> {
  const slot = { write, committed: false };
  const value = await callerWrites.run(slot, run);
  return { value, written: slot.committed };
}

export interface TransactOptions {
  /** False for records that are not the change asked for (refusals): they never carry the caller's write. */
  readonly carriesCallerWrite?: boolean;
}

/**
 * Runs one state change: a transaction with the database's now, audit in the same transaction,
 * and wake-ups after commit. Target systems are never called from inside.
 */
export async function transact<T>(context: EngineContext, work: (unit: UnitOfWork) => Promise<T>, options: TransactOptions = {}): Promise<T> {
  let wake = false;
  let notifications = 0;
  const slot = options.carriesCallerWrite === false ? undefined : callerWrites.getStore();
  const carried = slot && !slot.committed ? slot : undefined;
  const { value, records } = await auditedTransaction<T>(
    context.store.db,
    async (change) => {
      wake = false;
      const entries: AuditEntry[] = [];
      const unit: UnitOfWork = {
        tx: change.tx,
        now: change.now,
        audit: async (entry) => {
          entries.push(entry);
          change.audit(entry);
        },
        wake: () => {
          wake = true;
        },
      };
      const value = await work(unit);
      // The outbox: notifications commit with the change they tell of (src/engine/notification-outbox.ts).
      notifications = await recordNotifications(context, unit, entries);
      return value;
    },
    {
      ...(carried ? { afterWork: (tx, value) => carried.write(tx, value) } : {}),
      beforeCommit: async (tx, committed) => {
        if (context.store.kind !== 'postgres') return;
        if (wake) await notifyOnCommit(tx, JOBS_CHANNEL);
        // Live views in every replica (SSE) hear of request and grant changes at commit.
        for (const payload of changePayloads(committed)) await notifyOnCommit(tx, CHANGES_CHANNEL, payload);
      },
    },
  );
  if (carried) carried.committed = true;
  if (notifications > 0) {
    failpoint('notify:after-commit');
    context.pokeNotifier();
  }
  if (wake) context.poke();
  for (const entry of records) context.events.emit('change', entry);
  return value;
}

/** Records a refused or rejected action in the audit log, in a transaction of its own. */
export async function auditRefusal(context: EngineContext, entry: AuditEntry): Promise<void> {
  await transact(context, (unit) => unit.audit(entry), { carriesCallerWrite: false });
}

export interface ResolvedEntitlement {
  readonly target: TargetConfig;
  readonly entitlement: EntitlementConfig;
  readonly connector: Connector;
}

/** Finds a target/entitlement in the current config, with its connector. */
export function resolveEntitlement(context: EngineContext, targetName: string, entitlementName: string): ResolvedEntitlement {
  const target = context.config().targets.get(targetName);
  const entitlement = target?.entitlements.get(entitlementName);
  if (!target || !entitlement) {
    throw new LapseError('not_found', `there is no entitlement ${targetName}/${entitlementName}`, {
      where: `${targetName}/${entitlementName}`,
      hint: 'Check the name against `lapse policy explain`, which lists what you may request.',
    });
  }
  const connector = context.connectors.get(target.connector);
  if (!connector) {
    throw new LapseError('config_invalid', `target ${target.name} uses connector "${target.connector}", which this Lapse does not have`, {
      where: `targets.${target.name}.connector`,
      hint: `Known connectors: ${context.connectors.types().join(', ')}.`,
    });
  }
  return { target, entitlement, connector };
}

/** Refuses parameters the entitlement's connector does not accept, before anything is stored. */
export function checkParameters(resolved: ResolvedEntitlement, parameters: Readonly<Record<string, string>>): void {
  const { target, entitlement, connector } = resolved;
  const names = Object.keys(parameters);
  const problems = connector.validateParameters
    ? connector.validateParameters(target, entitlement, parameters)
    : names.map((key) => `parameters.${key}: ${target.name}/${entitlement.name} takes no parameters`);
  if (problems.length === 0) return;
  throw new LapseError('validation_failed', `invalid parameters for ${target.name}/${entitlement.name}: ${problems[0]}`, {
    where: 'parameters',
    problems,
    hint: `See docs/connectors/${connector.type}.md for the parameters ${connector.type} entitlements take; nothing was changed.`,
  });
}

/** The NOTIFY channel that wakes every replica's scheduler. */
const JOBS_CHANNEL = 'lapse_jobs';

/** The NOTIFY channel carrying request and grant changes to every replica's live views. */
export const CHANGES_CHANNEL = 'lapse_changes';

/** A change to a request or grant, as live views see it: what changed, how, and when it committed. */
export interface Change {
  readonly subject: string;
  readonly action: string;
}

/** Changes as NOTIFY payloads: JSON arrays kept well below PostgreSQL's 8,000-byte payload limit. */
export function changePayloads(entries: readonly AuditEntry[]): string[] {
  const payloads: string[] = [];
  let batch: Change[] = [];
  let size = 2;
  for (const entry of entries) {
    if (!entry.subject || !/^(req|grt)_/.test(entry.subject)) continue;
    const change: Change = { subject: entry.subject, action: entry.action };
    const length = JSON.stringify(change).length + 1;
    if (size + length > 7_000 && batch.length > 0) {
      payloads.push(JSON.stringify(batch));
      batch = [];
      size = 2;
    }
    batch.push(change);
    size += length;
  }
  if (batch.length > 0) payloads.push(JSON.stringify(batch));
  return payloads;
}
