import { randomBytes } from 'node:crypto';
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { LapseError } from '../../domain/errors.js';
import type { TargetConfig } from '../../config/types.js';
import { NoopPasswords } from './noop-rotation.js';
import type { AccessHandle, Connector, CurrentAccess, GrantSpec, ProvisionResult, RevokeResult } from '../types.js';

/**
 * A connector with no real system behind it: it keeps the "target's" access in memory, records
 * every call, and can be told to fail or be slow. Tests and the example config use it; it is the
 * reference for what idempotent provision/revoke mean.
 *
 * Target settings (all optional): `delay` (ms per call), `failProvision` / `failRevoke` (true to
 * fail every call), `callLog` (a file that receives one JSON line per call, so a test can see what
 * a separate process did).
 */
export interface NoopCall {
  readonly op: 'provision' | 'revoke' | 'list' | 'check' | 'extend' | 'rotate' | 'verify' | 'end_sessions';
  /** For the vault's calls: the account whose password was set or checked (never the password). */
  readonly account?: string;
  /** For extend: the new expiry the target was told. */
  readonly notAfter?: string;
  readonly target: string;
  readonly grantId?: string;
  readonly principalId?: string;
  readonly entitlement?: string;
  /** What the call changed: created/removed, or nothing because it was already so. */
  readonly effect?: 'created' | 'already_present' | 'removed' | 'already_absent';
  readonly at: number;
}

export interface NoopBehaviour {
  delayMs: number;
  failProvision: boolean;
  failRevoke: boolean;
  /** The next this-many revoke calls remove the access but report it as not yet confirmed, like an eventually consistent cloud. */
  pendingRevokes: number;
  /** Fail every password change (the vault's rotation). */
  failRotate: boolean;
}

interface Access {
  readonly grantId: string;
  readonly principalId: string;
  readonly entitlement: string;
}

export class NoopConnector implements Connector {
  readonly type = 'noop';
  readonly calls: NoopCall[] = [];
  private readonly access = new Map<string, Map<string, Access>>();
  private readonly behaviours = new Map<string, NoopBehaviour>();
  /** Accounts with passwords for the vault (see NoopPasswords). */
  readonly rotation: NoopPasswords = new NoopPasswords({
    behaviour: (target) => this.behaviour(target),
    pause: (target, signal) => this.pause(target, signal),
    record: (target, call) => this.record(target, call),
  });

  /** Live test control over one target: flip failures or slowness while the engine runs. */
  behaviour(target: string): NoopBehaviour {
    let behaviour = this.behaviours.get(target);
    if (!behaviour) {
      behaviour = { delayMs: 0, failProvision: false, failRevoke: false, pendingRevokes: 0, failRotate: false };
      this.behaviours.set(target, behaviour);
    }
    return behaviour;
  }

  validateSettings(target: TargetConfig): string[] {
    const problems: string[] = [];
    const { delay, failProvision, failRevoke, callLog } = target.settings;
    if (delay !== undefined && (typeof delay !== 'number' || delay < 0 || delay > 60_000)) {
      problems.push(`targets.${target.name}.settings.delay: must be a number of milliseconds from 0 to 60000`);
    }
    for (const [key, value] of Object.entries({ failProvision, failRevoke })) {
      if (value !== undefined && typeof value !== 'boolean') problems.push(`targets.${target.name}.settings.${key}: must be true or false`);
    }
    if (callLog !== undefined && (typeof callLog !== 'string' || callLog.length > 4096)) {
      problems.push(`targets.${target.name}.settings.callLog: must be a file path`);
    }
    return problems;
  }

  async checkTarget(target: TargetConfig, signal: AbortSignal): Promise<void> {
    await this.pause(target, signal);
    this.record(target, { op: 'check', target: target.name, at: Date.now() });
  }

  accessKey(grant: GrantSpec): string {
    return `${grant.target.name}/${grant.entitlement.name}/${grant.principalId}`;
  }

  async provision(grant: GrantSpec, signal: AbortSignal): Promise<ProvisionResult> {
    await this.pause(grant.target, signal);
    if (this.fails(grant.target, 'failProvision')) {
      throw new LapseError('connector_failed', `noop target ${grant.target.name} was told to fail provision`);
    }
    const key = this.accessKey(grant);
    const holders = this.holders(grant.target.name, grant.target);
    const effect = holders.has(key) ? 'already_present' : 'created';
    // NB. Recorded before answering, like a real target that commits and then loses the reply.
    holders.set(key, { grantId: grant.grantId, principalId: grant.principalId, entitlement: grant.entitlement.name });
    this.record(grant.target, { op: 'provision', ...this.describe(grant), effect, at: Date.now() });
    // NB. `issueCredentials: true` makes it behave like an ephemeral-account connector: a fresh
    // secret on every provision, for the requester to fetch once.
    if (grant.entitlement.settings.issueCredentials === true) {
      return { handle: { key }, credentials: { username: `noop_${grant.grantId}`, password: randomBytes(18).toString('base64url') } };
    }
    return { handle: { key } };
  }

  /** Records the new expiry, like a target with its own backstop would take it. */
  async extend(grant: GrantSpec, _handle: AccessHandle | null, signal: AbortSignal): Promise<void> {
    await this.pause(grant.target, signal);
    this.record(grant.target, { op: 'extend', ...this.describe(grant), notAfter: grant.notAfter.toISOString(), at: Date.now() });
  }

  async revoke(grant: GrantSpec, handle: AccessHandle | null, signal: AbortSignal): Promise<RevokeResult | void> {
    await this.pause(grant.target, signal);
    if (this.fails(grant.target, 'failRevoke')) {
      throw new LapseError('connector_failed', `noop target ${grant.target.name} was told to fail revoke`);
    }
    const key = typeof handle?.key === 'string' ? handle.key : this.accessKey(grant);
    const effect = this.holders(grant.target.name, grant.target).delete(key) ? 'removed' : 'already_absent';
    this.record(grant.target, { op: 'revoke', ...this.describe(grant), effect, at: Date.now() });
    const behaviour = this.behaviour(grant.target.name);
    if (behaviour.pendingRevokes > 0) {
      behaviour.pendingRevokes--;
      return { propagationPending: `noop target ${grant.target.name}: the read-back still shows the access`, recheckInMs: 10 };
    }
  }

  async listAccess(target: TargetConfig, signal: AbortSignal): Promise<CurrentAccess[]> {
    await this.pause(target, signal);
    this.record(target, { op: 'list', target: target.name, at: Date.now() });
    return [...this.holders(target.name, target).values()].map((a) => ({
      account: a.principalId,
      principalId: a.principalId,
      entitlement: a.entitlement,
      grantId: a.grantId || null,
    }));
  }

  async removeAccess(target: TargetConfig, access: CurrentAccess, signal: AbortSignal): Promise<void> {
    await this.pause(target, signal);
    const key = `${target.name}/${access.entitlement}/${access.principalId}`;
    const effect = this.holders(target.name, target).delete(key) ? 'removed' : 'already_absent';
    this.record(target, {
      op: 'revoke',
      target: target.name,
      grantId: access.grantId ?? 'unmanaged',
      principalId: access.principalId,
      entitlement: access.entitlement,
      effect,
      at: Date.now(),
    });
  }

  /** Gives access behind Lapse's back, as someone with direct target access would (for reconciliation tests). */
  addUnmanaged(target: TargetConfig, entitlement: string, principalId: string): void {
    const access = { grantId: '', principalId, entitlement };
    this.holders(target.name, target).set(`${target.name}/${entitlement}/${principalId}`, access);
  }

  /** Whether the target currently gives `principalId` the entitlement (for tests). */
  hasAccess(target: string, entitlement: string, principalId: string): boolean {
    return this.holders(target).has(`${target}/${entitlement}/${principalId}`);
  }

  private holders(target: string, config?: TargetConfig): Map<string, Access> {
    let holders = this.access.get(target);
    if (!holders) {
      holders = new Map();
      const log = config?.settings.callLog;
      if (typeof log === 'string' && existsSync(log)) replay(readFileSync(log, 'utf8'), target, holders);
      this.access.set(target, holders);
    }
    return holders;
  }

  private describe(grant: GrantSpec) {
    return { target: grant.target.name, grantId: grant.grantId, principalId: grant.principalId, entitlement: grant.entitlement.name };
  }

  private fails(target: TargetConfig, key: 'failProvision' | 'failRevoke'): boolean {
    return this.behaviour(target.name)[key] || target.settings[key] === true;
  }

  private async pause(target: TargetConfig, signal: AbortSignal): Promise<void> {
    const configured = typeof target.settings.delay === 'number' ? target.settings.delay : 0;
    const delayMs = Math.max(configured, this.behaviour(target.name).delayMs);
    signal.throwIfAborted();
    if (delayMs <= 0) return;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(resolve, delayMs);
      signal.addEventListener(
        'abort',
        () => {
          clearTimeout(timer);
          reject(signal.reason);
        },
        { once: true },
      );
    });
  }

  private record(target: TargetConfig, call: NoopCall): void {
    this.calls.push(call);
    if (typeof target.settings.callLog === 'string') appendFileSync(target.settings.callLog, `${JSON.stringify(call)}\n`);
  }
}

function replay(log: string, target: string, holders: Map<string, Access>): void {
  for (const line of log.split('\n')) {
    if (!line) continue;
    const call = JSON.parse(line) as NoopCall;
    if (call.target !== target || !call.grantId || !call.principalId || !call.entitlement) continue;
    const key = `${target}/${call.entitlement}/${call.principalId}`;
    if (call.op === 'provision') holders.set(key, { grantId: call.grantId, principalId: call.principalId, entitlement: call.entitlement });
    if (call.op === 'revoke') holders.delete(key);
  }
}
