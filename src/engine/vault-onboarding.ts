import { z } from 'zod';
import { mayManageVault } from '../domain/authorization.js';
import { LapseError } from '../domain/errors.js';
import { newId } from '../domain/ids.js';
import { resourceName } from '../domain/input-schemas.js';
import { viaData } from '../domain/principal.js';
import type { VaultAccount } from '../domain/vault.js';
import { boundedText } from '../domain/text.js';
import { databaseNow, getVaultAccount, listVaultAccounts, vaultAccountSchedules, lockAccessKeys, putOnboardedAccount, scheduleJob } from '../store/index.js';
import { auditRefusal, transact, type EngineContext } from './context.js';
import { clientInput, parseInput, principalInput } from './inputs.js';
import { callConnector } from './target-calls.js';
import { resolveCheckout, vaultAccessKey, vaultSealContext } from './vault-rotation.js';

/** Onboarding hands Lapse a live privileged password: the admin's second factor must be this recent. */
export const ONBOARD_MFA_MAX_AGE_MS = 5 * 60_000;

export const onboardInput = z
  .object({
    target: resourceName,
    account: boundedText(256).min(1),
    // NB. Never echoed: zod's messages name the field and the rule, not the value.
    password: z
      .string()
      .min(1, 'must not be empty')
      .max(1024, 'must be at most 1024 characters')
      // eslint-disable-next-line no-control-regex -- control characters are exactly what is refused here.
      .refine((p) => !/[\u0000-\u001f\u007f]/.test(p), 'must not contain control characters (a trailing newline from a file?)'),
    by: principalInput,
    client: clientInput,
  })
  .strict();
export type OnboardInput = z.input<typeof onboardInput>;

/** An account as admins see it: its state, never its password. */
export interface VaultAccountView {
  readonly id: string;
  readonly target: string;
  readonly account: string;
  readonly status: VaultAccount['status'];
  readonly generation: number;
  readonly holderGrantId: string | null;
  /** Who holds it while checked out (the holder grant's principal). */
  readonly holderPrincipalId: string | null;
  readonly rotatedAt: Date | null;
  /** When its next rotation is due (a scheduled one, or one under way or retried); null when none is planned. */
  readonly nextRotationAt: Date | null;
  readonly rotationFailures: number;
  /** Set while rotations keep failing: a past holder may still know the live password. */
  readonly rotationOverdueSince: Date | null;
  readonly lastError: string | null;
  readonly onboardedAt: Date;
  readonly onboardedBy: string;
}

function view(account: VaultAccount, schedule?: { holderPrincipalId: string | null; rotationDueAt: Date | null }): VaultAccountView {
  return {
    id: account.id,
    target: account.target,
    account: account.account,
    status: account.status,
    generation: account.generation,
    holderGrantId: account.status === 'checked_out' ? account.holderGrantId : null,
    holderPrincipalId: account.status === 'checked_out' ? (schedule?.holderPrincipalId ?? null) : null,
    rotatedAt: account.rotatedAt,
    nextRotationAt: schedule?.rotationDueAt ?? null,
    rotationFailures: account.rotationFailures,
    rotationOverdueSince: account.failingSince,
    lastError: account.lastError,
    onboardedAt: account.onboardedAt,
    onboardedBy: account.onboardedBy,
  };
}

/**
 * An admin hands Lapse an account's current password, once. Lapse logs in with it first (a wrong
 * password stores nothing), seals it, and rotates at once, so nobody knows the live password after.
 * Onboarding again (e.g. after the KEK was lost and the password reset by hand) replaces what was
 * stored, unless the account is checked out.
 */
export async function onboardAccount(context: EngineContext, raw: OnboardInput): Promise<VaultAccountView> {
  const input = parseInput(onboardInput, raw, 'onboarding');
  const name = `${input.target}/${input.account}`;
  if (!mayManageVault(context.config().roles, input.by)) {
    await auditRefusal(context, { action: 'vault.onboard_refused', actor: input.by.id, data: { ...viaData(input.by), account: name, code: 'forbidden' } });
    throw new LapseError('forbidden', `${input.by.id} may not onboard vault accounts`, { where: name, hint: 'Only admins (roles.admins) onboard accounts.' });
  }
  const now = (await databaseNow(context.store.db)).getTime();
  if (!input.client.mfaAt || now - input.client.mfaAt.getTime() > ONBOARD_MFA_MAX_AGE_MS) {
    throw new LapseError('mfa_step_up_required', `onboarding ${name} needs a second factor verified within the last 5 minutes`, {
      where: name,
      hint: 'Step up (POST /api/v1/mfa/step-up, or the X-Lapse-MFA header with a token), then repeat.',
    });
  }
  const resolved = resolveCheckout(context, input.target, input.account);
  const accepted = await callConnector(context, `login check of ${name}`, (signal) =>
    resolved.rotation.verifyPassword(resolved.target, input.account, input.password, signal),
  );
  if (!accepted) {
    await auditRefusal(context, {
      action: 'vault.onboard_failed',
      actor: input.by.id,
      data: { ...viaData(input.by), account: name, reason: 'password refused' },
    });
    throw new LapseError('validation_failed', `target ${input.target} refused the password given for ${input.account}; nothing was stored`, {
      where: name,
      hint: 'Give the account’s current password (Lapse logs in with it before keeping it).',
    });
  }
  return transact(context, async (unit) => {
    await lockAccessKeys(unit.tx, [vaultAccessKey(input.target, input.account)]);
    const existing = await getVaultAccount(unit.tx, { target: input.target, account: input.account }, { forUpdate: true });
    if (existing?.status === 'checked_out') {
      throw new LapseError('conflict', `${name} is checked out (grant ${existing.holderGrantId}); onboard it again after the check-in`, { where: name });
    }
    const account: VaultAccount = {
      id: existing?.id ?? newId('vaultAccount'),
      target: input.target,
      account: input.account,
      status: 'rotating',
      generation: (existing?.generation ?? 0) + 1,
      holderGrantId: null,
      rotationReason: 'onboarded',
      rotatedAt: existing?.rotatedAt ?? null,
      rotationFailures: 0,
      failingSince: null,
      lastError: null,
      onboardedAt: unit.now,
      onboardedBy: input.by.id,
    };
    await putOnboardedAccount(unit.tx, account, context.sealer.seal(input.password, vaultSealContext(account.id, account.generation)));
    // NB. Moved, not merely ensured: an unfinished rotation of the old password is superseded.
    await scheduleJob(unit.tx, 'rotate', account.id, { delayMs: 0 });
    unit.wake();
    await unit.audit({
      action: 'vault.onboarded',
      actor: input.by.id,
      subject: account.id,
      data: { ...viaData(input.by), account: name, generation: account.generation, replaced: existing !== undefined },
    });
    return view(account);
  });
}

/** Every account in the vault with its state (admins and auditors; no passwords). */
export async function vaultAccounts(context: EngineContext): Promise<VaultAccountView[]> {
  const schedules = await vaultAccountSchedules(context.store.db);
  return (await listVaultAccounts(context.store.db)).map((account) => view(account, schedules.get(account.id)));
}
