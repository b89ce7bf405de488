import type { EventEmitter } from 'node:events';
import { sql, type Transaction } from 'kysely';
import type { Logger } from 'pino';
import { appendAuditEvents } from '../audit/index.js';
import type { EffectiveConfig, EntitlementConfig, TargetConfig } from '../config/types.js';
import type { Connector, ConnectorRegistry } from '../connectors/index.js';
import { LapseError } from '../domain/errors.js';
import type { Database, Store } from '../store/index.js';

/** What every use-case may touch. Nothing else: no globals, no hidden singletons. */
export interface EngineContext {
  readonly store: Store;
  readonly config: () => EffectiveConfig;
  readonly connectors: ConnectorRegistry;
  readonly logger: Logger;
  /** Tells the local scheduler there may be work due now (other replicas hear it via NOTIFY). */
  readonly poke: () => void;
  /** Emits 'change' with each audit entry once its transaction committed (live updates, tests). */
  readonly events: EventEmitter;
}

export interface AuditEntry {
  readonly action: string;
  readonly actor: string;
  readonly subject?: string;
  readonly data?: Record<string, unknown>;
}

export interface UnitOfWork {
  readonly tx: Transaction<Database>;
  /** The database's clock at the start of this transaction: one "now" for the whole change. */
  readonly now: Date;
  /** Records an audit event in this transaction: it commits with the state change or not at all. */
  audit(entry: AuditEntry): Promise<void>;
  /** Wakes schedulers after commit (here and, through NOTIFY, on other replicas). */
  wake(): void;
}

/**
 * Runs one state change: a transaction with the database's now, audit in the same transaction,
 * and wake-ups after commit. Target systems are never called from inside.
 */
export async function transact<T>(context: EngineContext, work: (unit: UnitOfWork) => Promise<T>): Promise<T> {
  let wake = false;
  let committed: AuditEntry[] = [];
  const result = await context.store.db.transaction().execute(async (tx) => {
    const { rows } = await sql<{ now: Date }>`SELECT now() AS now`.execute(tx);
    committed = [];
    const unit: UnitOfWork = {
      tx,
      now: new Date(rows[0]!.now),
      audit: async (entry) => {
        committed.push(entry);
      },
      wake: () => {
        wake = true;
      },
    };
    const value = await work(unit);
    // NB. Appended last, in one batch: the audit head row is locked from here to commit, and every
    // writer in every replica queues on it, so it is held for as short a time as possible.
    await appendAuditEvents(tx, committed);
    if (wake && context.store.kind === 'postgres') await sql`SELECT pg_notify('lapse_jobs', '')`.execute(tx);
    return value;
  });
  if (wake) context.poke();
  for (const entry of committed) context.events.emit('change', entry);
  return result;
}

/** Records a refused or rejected action in the audit log, in a transaction of its own. */
export async function auditRefusal(context: EngineContext, entry: AuditEntry): Promise<void> {
  await transact(context, (unit) => unit.audit(entry));
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
