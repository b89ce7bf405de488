import type { CheckoutConfig } from '../config/types.js';
import type { RevokeResult } from '../connectors/index.js';
import { LapseError } from '../domain/errors.js';
import { beginRevoke } from '../domain/grant.js';
import { beginRotation, checkOut } from '../domain/vault.js';
import {
  completeJob,
  getVaultAccount,
  liveGrantsForKey,
  lockAccessKeys,
  retryJob,
  scheduleJob,
  updateGrant,
  updateVaultAccount,
  type Job,
  type StoredGrant,
} from '../store/index.js';
import { transact, type EngineContext, type UnitOfWork } from './context.js';
import { activateProvisioned } from './grant-opening.js';
import { callConnector } from './target-calls.js';
import { requestRotation, resolveCheckout, vaultAccessKey, vaultSealContext } from './vault-rotation.js';

/**
 * A vault check-out is a grant (docs/vault.md): the same request, policy, approval and MFA path;
 * "provisioning" hands out the password Lapse holds (no target call: one transaction), and the
 * grant's end is the check-in: the account's sessions end, its password is rotated, and only then
 * is the grant revoked.
 */

/** How often a queued check-out looks again on its own (a finished rotation wakes it at once). */
const QUEUE_POLL_MS = 5_000;

/** What a checked-out grant remembers: which account, and which of its passwords it was given. */
interface CheckoutHandle {
  readonly vaultAccount: string;
  readonly generation: number;
}

function handleOf(grant: StoredGrant): CheckoutHandle | null {
  const handle = grant.handle;
  if (!handle || typeof handle.vaultAccount !== 'string' || typeof handle.generation !== 'number') return null;
  return { vaultAccount: handle.vaultAccount, generation: handle.generation };
}

/**
 * Submitting a request for a check-out: refused at once, and nothing stored, when the account was
 * never onboarded, or when it is exclusive, set to `refuse`, and another grant holds it. Runs in
 * the submit's transaction under the account's access-key lock, so of two concurrent requests
 * exactly one gets through.
 */
export async function refuseUnavailableCheckout(unit: UnitOfWork, target: string, entitlement: string, checkout: CheckoutConfig): Promise<void> {
  const key = vaultAccessKey(target, checkout.account);
  await lockAccessKeys(unit.tx, [key]);
  const name = `${target}/${checkout.account}`;
  if (!(await getVaultAccount(unit.tx, { target, account: checkout.account }))) {
    throw new LapseError('invalid_transition', `${target}/${entitlement} lends ${name}, which is not in the vault yet`, {
      where: `${target}/${entitlement}`,
      hint: `An admin must onboard it first: \`lapse vault onboard ${target} ${checkout.account}\`.`,
    });
  }
  if (!checkout.exclusive || checkout.whenCheckedOut !== 'refuse') return;
  const holder = (await liveGrantsForKey(unit.tx, key, '')).find((g) => g.status === 'active' || g.status === 'provisioning');
  if (holder) {
    throw new LapseError(
      'conflict',
      `${target}/${entitlement} is checked out by someone else${holder.expiresAt ? ` until ${holder.expiresAt.toISOString()} at the latest` : ''}`,
      {
        where: `${target}/${entitlement}`,
        hint: 'The account is lent to one holder at a time; ask again once it is checked in. Nothing was stored.',
      },
    );
  }
}

/** The provision job of a check-out, in its first transaction (the grant row and its access key are locked). */
export async function handOutCheckout(
  context: EngineContext,
  unit: UnitOfWork,
  job: Job,
  worker: number,
  grant: StoredGrant,
  checkout: CheckoutConfig,
): Promise<void> {
  const name = `${grant.target}/${checkout.account}`;
  const account = await getVaultAccount(unit.tx, { target: grant.target, account: checkout.account }, { forUpdate: true });
  if (!account) {
    return refuseCheckout(
      unit,
      job,
      worker,
      grant,
      `${name} is not in the vault: an admin must onboard it (lapse vault onboard ${grant.target} ${checkout.account})`,
    );
  }
  const others = await liveGrantsForKey(unit.tx, grant.accessKey, grant.id);
  const holder = others.find((o) => o.status === 'active' || (o.status === 'provisioning' && o.id < grant.id));
  if (checkout.exclusive && holder) {
    if (checkout.whenCheckedOut === 'refuse') return refuseCheckout(unit, job, worker, grant, `${name} is checked out by another grant (${holder.id})`);
    return waitInQueue(unit, job, worker, grant, `queued: ${name} is checked out by grant ${holder.id}`);
  }
  // NB. Never hand out a password that is being replaced: wait for the rotation (a check-in's, or a schedule's).
  if (account.status === 'rotating' || others.some((o) => o.status === 'revoking' && o.coveredBy === null)) {
    return waitInQueue(unit, job, worker, grant, `waiting for the rotation of ${name} to finish`);
  }
  const resolved = resolveCheckout(context, grant.target, checkout.account);
  const password = context.sealer.open(account.currentSealed, vaultSealContext(account.id, account.generation));
  const handle: CheckoutHandle = { vaultAccount: account.id, generation: account.generation };
  const credentials = { ...resolved.rotation.loginDetails(resolved.target, checkout.account), username: checkout.account, password };
  await activateProvisioned(context, unit, job, worker, grant, { ...handle }, credentials);
  await updateVaultAccount(unit.tx, checkOut(account, grant.id));
  await unit.audit({
    action: 'vault.checked_out',
    actor: grant.principalId,
    subject: account.id,
    data: { account: name, grant: grant.id, generation: account.generation },
  });
}

async function waitInQueue(unit: UnitOfWork, job: Job, worker: number, grant: StoredGrant, reason: string): Promise<void> {
  await retryJob(unit.tx, job, worker, QUEUE_POLL_MS, reason);
  if (grant.lastError !== reason) await updateGrant(unit.tx, grant, { lastError: reason });
}

/** The check-out cannot be served: the grant ends as failed (nothing was handed out, so nothing to rotate). */
async function refuseCheckout(unit: UnitOfWork, job: Job, worker: number, grant: StoredGrant, reason: string): Promise<void> {
  const ending = beginRevoke(grant, 'provision_failed', 'system', unit.now);
  await updateGrant(unit.tx, ending, { lastError: reason });
  await completeJob(unit.tx, job, worker);
  await scheduleJob(unit.tx, 'revoke', grant.id, { delayMs: 0 });
  unit.wake();
  await unit.audit({ action: 'grant.provision_failed', actor: 'system', subject: grant.id, data: { attempts: 0, error: reason, final: true } });
}

/**
 * The revoke of a check-out (the check-in): end the account's sessions, and start the rotation if
 * this grant was the last to hold it. Reports "propagation pending" until the account's password
 * is no longer the one this grant was given; the finished rotation reschedules this revoke. A grant
 * never activated was given nothing: done at once.
 */
export async function checkIn(context: EngineContext, grant: StoredGrant): Promise<RevokeResult | void> {
  const handle = handleOf(grant);
  if (!handle) return;
  const known = await transact(context, async (unit) => getVaultAccount(unit.tx, { id: handle.vaultAccount }));
  // Re-onboarded away or removed: the password this grant saw is gone with it.
  if (!known) return;
  const resolved = resolveCheckout(context, known.target, known.account);
  const name = `${known.target}/${known.account}`;
  await callConnector(context, `ending the sessions of ${name}`, (signal) => resolved.rotation.endSessions(resolved.target, known.account, signal));
  return transact(context, async (unit) => {
    await lockAccessKeys(unit.tx, [grant.accessKey]);
    const account = await getVaultAccount(unit.tx, { id: handle.vaultAccount }, { forUpdate: true });
    // Done once the password this grant saw was replaced and no rotation is still under way.
    if (!account || (account.generation > handle.generation && account.status !== 'rotating')) return;
    if (account.status === 'checked_out') {
      const rotating = beginRotation(account, 'check_in');
      await updateVaultAccount(unit.tx, rotating);
      await unit.audit({
        action: 'vault.rotation_started',
        actor: 'system',
        subject: account.id,
        data: { account: name, reason: 'check_in', grant: grant.id },
      });
    }
    await requestRotation(unit, account);
    return { propagationPending: `checked in; rotating the password of ${name}`, recheckInMs: context.config().scheduler.revokeBackoffMaxMs };
  });
}
