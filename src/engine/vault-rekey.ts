import {
  countSealedNotUnder,
  replaceSealedValue,
  SEALED_COLUMNS,
  sealedValuesNotUnder,
  type SealedColumn,
  type SealedKind,
  type SealedValue,
} from '../store/index.js';
import { transact, type EngineContext } from './context.js';
import { failpoint } from './failpoints.js';
import { credentialsContext } from './held-credentials.js';
import { errorMessage } from './target-calls.js';
import { vaultSealContext } from './vault-rotation.js';

/**
 * `lapse vault rekey` (docs/vault.md): after the key-encryption key changed, re-wraps every sealed
 * value still under an older key (vault passwords, current and pending; grants' one-time
 * credentials; TOTP seeds) under the current one, while Lapse keeps serving.
 * NB. Crash-safe and idempotent by construction: each batch is one transaction, and each value is
 * replaced only if it is still the one read (compare-and-set), by a value the old and the new
 * sealer alike can open with the current key; so a crash anywhere leaves every value readable
 * (old keys stay in `previousEncryptionKeys` until a run reports nothing left), and a rerun picks
 * up what is still under an old key. A value a rotation or a fetch replaced meanwhile is theirs.
 */

const BATCH = 100;
const MAX_REPORTED_FAILURES = 20;

export interface RekeyReport {
  /** The key everything is sealed under now. */
  readonly keyId: string;
  readonly rewrapped: Readonly<Record<SealedKind, number>>;
  /** Values changed or removed by someone else between read and write (already under the current key, or caught by a rerun). */
  readonly changedMeanwhile: number;
  /** Values no configured key opens (their key is lost, or they were tampered with): left as they are. */
  readonly unreadable: readonly { readonly kind: SealedKind; readonly id: string; readonly error: string }[];
  /** Values still not under the current key after this run (0 when the old keys may be removed). */
  readonly remaining: number;
}

/** The context a value was sealed with (the same strings its owners use to open it). */
function sealContextOf(column: SealedColumn, value: SealedValue): string {
  switch (column.kind) {
    case 'vault_current':
      return vaultSealContext(value.id, value.generation);
    case 'vault_pending':
      return vaultSealContext(value.id, value.generation + 1);
    case 'grant_handout':
      return credentialsContext(value.id);
    case 'mfa_totp':
      // NB. src/auth/mfa/totp.ts seals with this context (the engine may not import auth).
      return `totp:${value.owner}`;
  }
}

/** Re-wraps every sealed value under the current key; audited (`vault.rekey_started`, `vault.rekeyed`). */
export async function rekeySealedValues(context: EngineContext, by: string): Promise<RekeyReport> {
  const { sealer } = context;
  const before = await countSealedNotUnder(context.store.db, sealer.keyId);
  await transact(context, (unit) => unit.audit({ action: 'vault.rekey_started', actor: by, data: { keyId: sealer.keyId, toRewrap: before } }));
  const rewrapped = Object.fromEntries(SEALED_COLUMNS.map((c) => [c.kind, 0])) as Record<SealedKind, number>;
  const unreadable: { kind: SealedKind; id: string; error: string }[] = [];
  let unreadableCount = 0;
  let changedMeanwhile = 0;
  for (const column of SEALED_COLUMNS) {
    let afterId = '';
    for (;;) {
      const batch = await sealedValuesNotUnder(context.store.db, column, sealer.keyId, afterId, BATCH);
      if (batch.length === 0) break;
      afterId = batch[batch.length - 1]!.id;
      const next: { value: SealedValue; sealed: string }[] = [];
      for (const value of batch) {
        try {
          next.push({ value, sealed: sealer.rewrap(value.sealed, sealContextOf(column, value)) });
        } catch (caught) {
          unreadableCount++;
          if (unreadable.length < MAX_REPORTED_FAILURES) unreadable.push({ kind: column.kind, id: value.id, error: errorMessage(caught) });
        }
      }
      await transact(context, async (unit) => {
        for (const { value, sealed } of next) {
          if (await replaceSealedValue(unit.tx, column, value.id, value.sealed, sealed, sealer.keyId)) rewrapped[column.kind]++;
          else changedMeanwhile++;
        }
      });
      failpoint('rekey:after-batch');
    }
  }
  const remaining = Object.values(await countSealedNotUnder(context.store.db, sealer.keyId)).reduce((a, b) => a + b, 0);
  await transact(context, (unit) =>
    unit.audit({
      action: 'vault.rekeyed',
      actor: by,
      data: { keyId: sealer.keyId, rewrapped, changedMeanwhile, unreadable: unreadableCount, remaining, ...(unreadableCount > 0 ? { severity: 'high' } : {}) },
    }),
  );
  if (unreadableCount > 0) context.logger.warn({ unreadable: unreadableCount, first: unreadable.slice(0, 3) }, 'rekey left values no configured key opens');
  return { keyId: sealer.keyId, rewrapped, changedMeanwhile, unreadable, remaining };
}
