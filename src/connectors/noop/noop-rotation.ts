import { LapseError } from '../../domain/errors.js';
import type { TargetConfig } from '../../config/types.js';
import type { PasswordRotation } from '../types.js';
import type { NoopBehaviour, NoopCall } from './noop-connector.js';

/** What the noop target's password side borrows from the connector: its test controls, pauses and call log. */
export interface NoopHost {
  behaviour(target: string): NoopBehaviour;
  pause(target: TargetConfig, signal: AbortSignal): Promise<void>;
  record(target: TargetConfig, call: NoopCall): void;
}

/**
 * Accounts with passwords, kept in memory, for the vault's engine tests and the demo. An account
 * the target has never heard of takes the first password it is told it has (so onboarding works
 * without setup); from then on only the current password logs in. Calls are recorded without the
 * password.
 */
export class NoopPasswords implements PasswordRotation {
  private readonly passwords = new Map<string, string>();
  /** Sessions "open" per account, ended by endSessions. */
  private readonly sessions = new Map<string, number>();

  constructor(private readonly host: NoopHost) {}

  validateAccount(_target: TargetConfig, account: string, where: string): string[] {
    return account.length > 0 && account.length <= 128 ? [] : [`${where}: must be 1 to 128 characters`];
  }

  async rotatePassword(target: TargetConfig, account: string, password: string, signal: AbortSignal): Promise<void> {
    await this.host.pause(target, signal);
    if (this.host.behaviour(target.name).failRotate) {
      throw new LapseError('connector_failed', `noop target ${target.name} was told to fail password changes`);
    }
    this.passwords.set(this.key(target.name, account), password);
    this.host.record(target, { op: 'rotate', target: target.name, account, at: Date.now() });
  }

  async verifyPassword(target: TargetConfig, account: string, password: string, signal: AbortSignal): Promise<boolean> {
    await this.host.pause(target, signal);
    const key = this.key(target.name, account);
    if (!this.passwords.has(key)) this.passwords.set(key, password);
    const accepted = this.passwords.get(key) === password;
    if (accepted) this.sessions.set(key, (this.sessions.get(key) ?? 0) + 1);
    this.host.record(target, { op: 'verify', target: target.name, account, at: Date.now() });
    return accepted;
  }

  async endSessions(target: TargetConfig, account: string, signal: AbortSignal): Promise<void> {
    await this.host.pause(target, signal);
    this.sessions.delete(this.key(target.name, account));
    this.host.record(target, { op: 'end_sessions', target: target.name, account, at: Date.now() });
  }

  loginDetails(target: TargetConfig): Readonly<Record<string, string>> {
    return { target: target.name };
  }

  /** Whether `password` logs in as the account now (tests; records nothing). */
  accepts(target: string, account: string, password: string): boolean {
    return this.passwords.get(this.key(target, account)) === password;
  }

  private key(target: string, account: string): string {
    return JSON.stringify([target, account]);
  }
}
