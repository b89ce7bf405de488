import type { CheckoutConfig, EntitlementConfig, TargetConfig } from '../config/types.js';
import type { PasswordRotation } from '../connectors/index.js';
import { LapseError } from '../domain/errors.js';
import { beginRotation, completeRotation, failRotation, type VaultAccount } from '../domain/vault.js';
import {
  completeJob,
  ensureJob,
  getVaultAccount,
  holdsJob,
  liveGrantsForKey,
  lockAccessKeys,
  rescheduleJob,
  retryJob,
  scheduleJob,
  updateVaultAccount,
  type Job,
  type StoredVaultAccount,
} from '../store/index.js';
import { transact, type EngineContext, type UnitOfWork } from './context.js';
import { failpoint } from './failpoints.js';
import { backoffMs, callConnector, errorMessage } from './target-calls.js';
import { generatePassword } from './vault-passwords.js';

/**
 * Rotating a vaulted account's password (docs/vault.md), as one durable job per account, so two
 * rotations of one account never run at once. Crash-safe by order: (1) the pending password is
 * sealed and stored; (2) the target is told; (3) a login with it is tried; (4) it is promoted to
 * current. A crash anywhere leaves the job and the pending password; the next attempt sets the
 * same one again, so the account always ends with a password Lapse holds.
 */

/** Where a vaulted password may be opened: its account and its number (a sealed value moved elsewhere does not open). */
export function vaultSealContext(accountId: string, generation: number): string {
  return `vault-account:${accountId}:${generation}`;
}

/** Grants of one vaulted account share this access key (so their jobs take one lock). */
export function vaultAccessKey(target: string, account: string): string {
  return `vault:${target}/${JSON.stringify(account)}`;
}

/** Whether an access key is a vault check-out's (connector keys start with a target name, which has no colon). */
export function isVaultAccessKey(accessKey: string): boolean {
  return accessKey.startsWith('vault:');
}

export interface ResolvedCheckout {
  readonly target: TargetConfig;
  readonly entitlement: EntitlementConfig;
  readonly checkout: CheckoutConfig;
  readonly rotation: PasswordRotation;
}

/** The configured checkout lending `account` on `targetName`, with the connector's rotation. */
export function resolveCheckout(context: EngineContext, targetName: string, account: string): ResolvedCheckout {
  const target = context.config().targets.get(targetName);
  const entitlement = target ? [...target.entitlements.values()].find((e) => e.checkout?.account === account) : undefined;
  if (!target || !entitlement?.checkout) {
    throw new LapseError('not_found', `there is no vault account ${targetName}/${account} in the configuration`, {
      where: `${targetName}/${account}`,
      hint: 'A vault account is an entitlement with checkout.account under its target (docs/vault.md).',
    });
  }
  const rotation = context.connectors.get(target.connector)?.rotation;
  if (!rotation) {
    throw new LapseError('config_invalid', `target ${target.name}'s connector ${target.connector} cannot rotate passwords`, {
      where: `targets.${target.name}.connector`,
    });
  }
  return { target, entitlement, checkout: entitlement.checkout, rotation };
}

/** Makes sure the account's rotation job exists and is due now (never moves one a worker holds). */
export async function requestRotation(unit: UnitOfWork, account: VaultAccount): Promise<void> {
  await ensureJob(unit.tx, 'rotate', account.id, 0);
  unit.wake();
}

interface Prepared {
  readonly account: StoredVaultAccount;
  readonly pending: string;
  readonly resolved: ResolvedCheckout;
}

/** Reads the account under its access key's lock (the order every vault transaction follows). */
async function lockAccount(unit: UnitOfWork, id: string): Promise<StoredVaultAccount | undefined> {
  const unlocked = await getVaultAccount(unit.tx, { id });
  if (!unlocked) return undefined;
  await lockAccessKeys(unit.tx, [vaultAccessKey(unlocked.target, unlocked.account)]);
  return getVaultAccount(unit.tx, { id }, { forUpdate: true });
}

/** The scheduler's `rotate` job: one attempt at the account's rotation, retried with backoff until it succeeds. */
export async function rotateJob(context: EngineContext, job: Job, worker: number): Promise<void> {
  const prepared = await transact(context, (unit) => prepareRotation(context, unit, job, worker));
  if (!prepared) return;
  failpoint('rotate:after-seal');
  const { account, pending, resolved } = prepared;
  const name = `${account.target}/${account.account}`;
  let error: string | null = null;
  try {
    await callConnector(context, `password change of ${name}`, (signal) => resolved.rotation.rotatePassword(resolved.target, account.account, pending, signal));
    failpoint('rotate:after-change');
    const accepted = await callConnector(context, `login check of ${name}`, (signal) =>
      resolved.rotation.verifyPassword(resolved.target, account.account, pending, signal),
    );
    if (!accepted) {
      throw new LapseError('connector_failed', `${name} refused its new password right after it was set`, {
        hint: 'Something else may change this password; Lapse sets the same new password again on the next attempt.',
      });
    }
    failpoint('rotate:after-verify');
  } catch (caught) {
    // NB. Connectors never put a password in an error; this is the second line of defence.
    error = errorMessage(caught).split(pending).join('[password]');
  }
  await transact(context, async (unit) => {
    const current = await lockAccount(unit, account.id);
    // Re-onboarded, finished or taken over meanwhile: not ours to record.
    if (!current || current.status !== 'rotating' || current.generation !== account.generation || !(await holdsJob(unit.tx, job, worker))) return;
    if (error !== null) return recordFailure(context, unit, current, job, worker, error);
    const rotated = completeRotation(current, unit.now);
    await updateVaultAccount(unit.tx, rotated, { promotePending: true });
    const every = resolved.checkout.rotateEveryMs;
    if (every === undefined) await completeJob(unit.tx, job, worker);
    else await rescheduleJob(unit.tx, job, worker, every);
    await wakeWaitingGrants(unit, vaultAccessKey(account.target, account.account));
    await unit.audit({
      action: 'vault.rotated',
      actor: 'system',
      subject: account.id,
      data: { account: name, generation: rotated.generation, reason: current.rotationReason, failedAttempts: current.rotationFailures },
    });
    if (current.failingSince) context.logger.info({ account: name, failedAttempts: current.rotationFailures }, 'vault rotation succeeded after failures');
  });
}

async function prepareRotation(context: EngineContext, unit: UnitOfWork, job: Job, worker: number): Promise<Prepared | null> {
  const stored = await lockAccount(unit, job.subjectId);
  // Checked out: its check-in rotates it (and re-arms the schedule).
  if (!stored || stored.status === 'checked_out') {
    await completeJob(unit.tx, job, worker);
    return null;
  }
  let resolved: ResolvedCheckout;
  try {
    resolved = resolveCheckout(context, stored.target, stored.account);
  } catch (caught) {
    if (stored.status === 'ready') {
      await completeJob(unit.tx, job, worker);
      return null;
    }
    // A rotation is owed: keep trying (and alerting) until the account is back in the config.
    await recordFailure(context, unit, stored, job, worker, errorMessage(caught));
    return null;
  }
  let account: StoredVaultAccount = stored;
  if (stored.status === 'ready') {
    account = { ...stored, ...beginRotation(stored, 'scheduled') };
    await updateVaultAccount(unit.tx, account);
    await unit.audit({
      action: 'vault.rotation_started',
      actor: 'system',
      subject: account.id,
      data: { account: `${account.target}/${account.account}`, reason: 'scheduled' },
    });
  }
  const context_ = vaultSealContext(account.id, account.generation + 1);
  if (account.pendingSealed !== null) return { account, pending: context.sealer.open(account.pendingSealed, context_), resolved };
  const pending = generatePassword(resolved.checkout.password);
  const pendingSealed = context.sealer.seal(pending, context_);
  await updateVaultAccount(unit.tx, account, { pendingSealed });
  return { account: { ...account, pendingSealed }, pending, resolved };
}

async function recordFailure(context: EngineContext, unit: UnitOfWork, account: StoredVaultAccount, job: Job, worker: number, error: string): Promise<void> {
  const failed = failRotation(account, error, unit.now);
  await updateVaultAccount(unit.tx, failed);
  const { revokeBackoffMinMs, revokeBackoffMaxMs } = context.config().scheduler;
  const delay = backoffMs(failed.rotationFailures, revokeBackoffMinMs, revokeBackoffMaxMs);
  await retryJob(unit.tx, job, worker, delay, error);
  const name = `${account.target}/${account.account}`;
  await unit.audit({
    action: 'vault.rotation_failed',
    actor: 'system',
    subject: account.id,
    data: { account: name, attempt: failed.rotationFailures, error, retryInMs: delay, severity: 'high' },
  });
  context.logger.warn({ account: name, attempt: failed.rotationFailures, retryInMs: delay, error }, 'vault rotation failed; will retry');
}

/** The rotation is done: check-ins waiting for it complete, and queued check-outs look again, now. */
async function wakeWaitingGrants(unit: UnitOfWork, accessKey: string): Promise<void> {
  for (const grant of await liveGrantsForKey(unit.tx, accessKey, '')) {
    if (grant.status === 'revoking') await scheduleJob(unit.tx, 'revoke', grant.id, { delayMs: 0 });
    if (grant.status === 'provisioning') await scheduleJob(unit.tx, 'provision', grant.id, { delayMs: 0 });
  }
  unit.wake();
}
