import type { IAMClient } from '@aws-sdk/client-iam';
import { LapseError } from '../../domain/errors.js';
import { withinDeadline } from '../shared/index.js';
import { INLINE_POLICY_BUDGET, REVOCATION_POLICY, fit, merge, parseDocument, renderDocument, type RevocationDocument } from './revocation-policy.js';
import { PolicyTooLarge, RolePolicies } from './role-api.js';

/**
 * Changes to a role's `lapse-revocations` policy go through one queue per role: IAM offers no
 * partial update and no compare-and-swap, so two read-modify-writes running side by side would
 * lose one change. Changes that arrive while a write is in flight are applied together in the next
 * one (a burst of a thousand revokes is a handful of writes). After writing, the writer reads the
 * policy back when a change asks for it: IAM is eventually consistent, and only a read-back that
 * shows the change confirms it.
 *
 * NB. The queue serialises writers in this process only. Two Lapse replicas revoking on the same
 * role at the same moment can still overwrite each other's change; the read-back catches an
 * overwrite that lands before it (the revoke then reports propagation pending and writes again),
 * not one that lands after. docs/connectors/aws-iam-role.md says so.
 */

/** Changes the document; returns how to tell from a read-back that the change is in force, if it must be confirmed. */
export type Edit = (doc: RevocationDocument, now: number) => Confirm | undefined;
export type Confirm = (readBack: RevocationDocument, now: number) => boolean;

export interface Outcome {
  /** The read-back shows the change (always true when the edit asked for no confirmation). */
  readonly confirmed: boolean;
  /** Whether the grant has a backstop in the policy now. */
  readonly backstop: boolean;
  /** The revoked grants were folded into a cutoff to make room (see revocation-policy.ts). */
  readonly cutoff: boolean;
}

interface Member {
  readonly grantId: string;
  readonly edit: Edit;
  readonly signal: AbortSignal;
  resolve(outcome: Outcome): void;
  reject(error: unknown): void;
}

interface Queue {
  readonly iam: IAMClient;
  readonly roleName: string;
  readonly pending: Member[];
  running: boolean;
}

export class RevocationWriter {
  private readonly queues = new Map<string, Queue>();
  /** The document this process last wrote per role, merged into each read (IAM may answer with an older one). */
  private readonly lastWritten = new Map<string, string | undefined>();
  /** Writes done (for tests and the benchmark: how many changes each write carried). */
  writes = 0;

  /** Applies `edit` for `grantId` to the role's policy, in the role's queue, within `signal`'s deadline. */
  change(key: string, iam: IAMClient, roleName: string, grantId: string, edit: Edit, signal: AbortSignal): Promise<Outcome> {
    return withinDeadline(signal, `the ${REVOCATION_POLICY} policy of role ${roleName}`, () => {
      let queue = this.queues.get(key);
      if (!queue) {
        queue = { iam, roleName, pending: [], running: false };
        this.queues.set(key, queue);
      }
      const done = new Promise<Outcome>((resolve, reject) => queue.pending.push({ grantId, edit, signal, resolve, reject }));
      if (!queue.running) void this.drain(key, queue);
      return done;
    });
  }

  private async drain(key: string, queue: Queue): Promise<void> {
    queue.running = true;
    while (queue.pending.length > 0) {
      const batch = queue.pending.splice(0);
      try {
        const outcomes = await this.apply(key, queue, batch);
        batch.forEach((member, i) => member.resolve(outcomes[i]!));
      } catch (error) {
        for (const member of batch) member.reject(error);
      }
    }
    queue.running = false;
    this.queues.delete(key);
  }

  private async apply(key: string, queue: Queue, batch: Member[]): Promise<Outcome[]> {
    const policies = new RolePolicies(queue.iam, queue.roleName, whenAllAborted(batch.map((m) => m.signal)));
    const before = await policies.get(REVOCATION_POLICY);
    const doc = readPolicy(before, queue.roleName);
    if (this.lastWritten.has(key)) merge(doc, parseDocument(this.lastWritten.get(key)));
    const now = Date.now();
    const confirms = batch.map((member) => member.edit(doc, now));
    let fitted = fit(doc, INLINE_POLICY_BUDGET, now);
    let text = fitted.text;
    const newBackstops = batch.map((m) => m.grantId).filter((id) => doc.backstops.has(id));
    if (text !== before) {
      try {
        await write(policies, text);
      } catch (error) {
        if (!(error instanceof PolicyTooLarge)) throw error;
        // Other inline policies share IAM's budget: measure them, make room, and write once more.
        const budget = INLINE_POLICY_BUDGET - (await policies.othersSize(REVOCATION_POLICY));
        fitted = fit(doc, budget, now);
        text = fitted.text;
        for (const id of newBackstops) {
          if (text === undefined || text.length <= budget) break;
          doc.backstops.delete(id);
          text = renderDocument(doc);
        }
        if (text !== undefined && text.length > budget) {
          throw new LapseError('connector_failed', `role ${queue.roleName}: its other inline policies leave no room for Lapse's ${REVOCATION_POLICY} policy`, {
            where: `role ${queue.roleName}`,
            hint: `IAM allows 10,240 characters of inline policies per role; move the role's own inline policies to managed policies (they have their own budget)`,
          });
        }
        await write(policies, text);
      }
      this.lastWritten.set(key, text);
      this.writes++;
    }
    const readBack = confirms.some((c) => c !== undefined) ? readPolicy(await policies.get(REVOCATION_POLICY), queue.roleName) : undefined;
    const checkedAt = Date.now();
    return batch.map((member, i) => ({
      confirmed: confirms[i] === undefined || confirms[i]!(readBack!, checkedAt),
      backstop: doc.backstops.has(member.grantId),
      cutoff: fitted.cutoff,
    }));
  }
}

async function write(policies: RolePolicies, text: string | undefined): Promise<void> {
  if (text === undefined) await policies.delete(REVOCATION_POLICY);
  else await policies.put(REVOCATION_POLICY, text);
}

function readPolicy(text: string | undefined, roleName: string): RevocationDocument {
  try {
    return parseDocument(text);
  } catch {
    throw new LapseError('connector_failed', `role ${roleName}: its ${REVOCATION_POLICY} inline policy is not JSON Lapse can read`, {
      where: `role ${roleName}`,
      hint: `the policy belongs to Lapse; fix it by hand or, when no revocation is in force, delete it (aws iam delete-role-policy --role-name ${roleName} --policy-name ${REVOCATION_POLICY})`,
    });
  }
}

/** A signal that aborts once every caller waiting on a shared write has given up. */
function whenAllAborted(signals: readonly AbortSignal[]): AbortSignal {
  const controller = new AbortController();
  const check = () => {
    if (signals.every((s) => s.aborted)) controller.abort(signals[0]?.reason);
  };
  for (const signal of signals) signal.addEventListener('abort', check, { once: true });
  check();
  return controller.signal;
}
