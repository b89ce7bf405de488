import type { TargetConfig } from '../../config/types.js';
import { LapseError } from '../../domain/errors.js';
import { checkName } from '../shared/index.js';
import type { PasswordRotation } from '../types.js';

/** How the rotation reaches the receiver: the connector's signed, retried delivery and its answer check. */
export interface WebhookDelivery {
  deliver(target: TargetConfig, operation: 'rotate' | 'verify' | 'end_sessions', fields: Record<string, unknown>, signal: AbortSignal): Promise<string>;
  parseVerify(target: TargetConfig, body: string): { accepted: boolean };
}

/**
 * The vault's `webhook` rotator, for any account Lapse has no connector for (a vendor console, a
 * server's local root): signed deliveries `rotate` (set this password), `verify` (does a login
 * with it work? `{ "accepted": true|false }`) and `end_sessions`, to the target's receiver, which
 * does the change. The receiver must make `rotate` idempotent (Lapse repeats it with the same
 * password after a crash) and must never log the body of `rotate` or `verify`.
 */
export function webhookPasswordRotation(delivery: WebhookDelivery): PasswordRotation {
  return {
    validateAccount(_target: TargetConfig, account: string, where: string): string[] {
      const problem = checkName(account, where, 256, 'account name');
      return problem ? [problem] : [];
    },

    async rotatePassword(target, account, password, signal) {
      await withoutPassword(password, () => delivery.deliver(target, 'rotate', { account, password }, signal));
    },

    async verifyPassword(target, account, password, signal) {
      const body = await withoutPassword(password, () => delivery.deliver(target, 'verify', { account, password }, signal));
      return delivery.parseVerify(target, body).accepted;
    },

    async endSessions(target, account, signal) {
      await delivery.deliver(target, 'end_sessions', { account }, signal);
    },

    loginDetails(target) {
      return { target: target.name };
    },
  };
}

/** A receiver's error answer is quoted into the error: it must not carry back the password it was sent. */
async function withoutPassword<T>(password: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (error instanceof LapseError && error.message.includes(password)) {
      throw new LapseError(error.code, error.message.split(password).join('[password]'), { ...error.details });
    }
    throw error;
  }
}
