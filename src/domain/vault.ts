import { LapseError } from './errors.js';

/**
 * A shared privileged account Lapse holds in its vault (docs/vault.md). Its password is known to
 * Lapse alone while `ready`; revealed to the holders of a check-out while `checked_out`; and being
 * replaced while `rotating` (a pending password is sealed and stored before the target is told,
 * so a rotation interrupted at any step finishes with the same password). No check-out starts
 * while it rotates; no rotation starts while it is checked out (the check-in rotates).
 */
export const VAULT_ACCOUNT_STATUSES = ['ready', 'checked_out', 'rotating'] as const;
export type VaultAccountStatus = (typeof VAULT_ACCOUNT_STATUSES)[number];

/** Why a rotation started: after a check-out, on schedule, or right after onboarding. */
export type RotationReason = 'check_in' | 'scheduled' | 'onboarded';

export interface VaultAccount {
  readonly id: string;
  readonly target: string;
  readonly account: string;
  readonly status: VaultAccountStatus;
  /** Counts the passwords Lapse has held for the account; the current one's number. */
  readonly generation: number;
  /** The grant that checked it out last (who holds it while checked out). */
  readonly holderGrantId: string | null;
  readonly rotationReason: RotationReason | null;
  readonly rotatedAt: Date | null;
  readonly rotationFailures: number;
  /** Since when rotations keep failing: the account is "rotation overdue" while set. */
  readonly failingSince: Date | null;
  readonly lastError: string | null;
  readonly onboardedAt: Date;
  readonly onboardedBy: string;
}

function invalid(account: VaultAccount, action: string): LapseError {
  return new LapseError('invalid_transition', `cannot ${action} ${account.target}/${account.account}: it is ${account.status.replace('_', ' ')}`, {
    where: `${account.target}/${account.account}`,
  });
}

/** A grant became active with the current password: it now knows it. */
export function checkOut(account: VaultAccount, grantId: string): VaultAccount {
  if (account.status === 'rotating') throw invalid(account, 'check out');
  return { ...account, status: 'checked_out', holderGrantId: grantId };
}

/** Starts replacing the password: its last holder checked in, or its schedule came round. */
export function beginRotation(account: VaultAccount, reason: RotationReason): VaultAccount {
  if (account.status === 'rotating') return account;
  if (reason === 'scheduled' && account.status !== 'ready') throw invalid(account, 'rotate on schedule');
  return { ...account, status: 'rotating', rotationReason: reason };
}

/** The target accepted the pending password and a login with it worked: it is the current one now. */
export function completeRotation(account: VaultAccount, now: Date): VaultAccount {
  if (account.status !== 'rotating') throw invalid(account, 'complete a rotation of');
  return {
    ...account,
    status: 'ready',
    generation: account.generation + 1,
    holderGrantId: null,
    rotationReason: null,
    rotatedAt: now,
    rotationFailures: 0,
    failingSince: null,
    lastError: null,
  };
}

/** A rotation attempt failed; it is retried, and the account stays "rotation overdue" until one succeeds. */
export function failRotation(account: VaultAccount, error: string, now: Date): VaultAccount {
  if (account.status !== 'rotating') throw invalid(account, 'record a failed rotation of');
  return { ...account, rotationFailures: account.rotationFailures + 1, failingSince: account.failingSince ?? now, lastError: error };
}
