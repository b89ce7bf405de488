/**
 * Crash points for the kill -9 tests: `LAPSE_FAILPOINTS=revoke:after-call` makes the process kill
 * itself (SIGKILL, no cleanup) the moment it reaches that point, so a test can prove that a crash
 * at every step of provision and revoke still ends with the access revoked exactly once.
 * NB. Read once at start; unset in production, where each check is one Set lookup.
 */
const armed = new Set(
  (process.env.LAPSE_FAILPOINTS ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean),
);

export const FAILPOINTS = [
  'provision:before-call',
  'provision:after-call',
  'provision:after-commit',
  'expire:after-commit',
  'revoke:before-call',
  'revoke:after-call',
  'revoke:after-commit',
] as const;

/**
 * The steps of a POST with an Idempotency-Key (src/api/idempotency.ts): its key looked up and the
 * request not yet run; inside the request's transaction, its result written but not committed;
 * committed, with the response not yet sent.
 */
export const IDEMPOTENCY_FAILPOINTS = ['idempotency:after-lookup', 'idempotency:before-commit', 'idempotency:after-commit'] as const;

/**
 * The steps of a notification: its delivery committed with the change and nothing sent yet; sent
 * (handed to the SMTP server) but not yet recorded as sent.
 */
export const NOTIFY_FAILPOINTS = ['notify:after-commit', 'notify:after-send'] as const;

/**
 * The steps of a vault rotation (src/engine/vault-rotation.ts): the pending password sealed and
 * stored; set at the target; a login with it worked (not yet promoted to current).
 */
export const VAULT_FAILPOINTS = ['rotate:after-seal', 'rotate:after-change', 'rotate:after-verify'] as const;

/** A batch of `lapse vault rekey` committed (src/engine/vault-rekey.ts); not a step of a rotation. */
export const REKEY_FAILPOINTS = ['rekey:after-batch'] as const;

export type Failpoint =
  | (typeof FAILPOINTS)[number]
  | (typeof IDEMPOTENCY_FAILPOINTS)[number]
  | (typeof NOTIFY_FAILPOINTS)[number]
  | (typeof VAULT_FAILPOINTS)[number]
  | (typeof REKEY_FAILPOINTS)[number];

export function failpoint(name: Failpoint): void {
  if (armed.size > 0 && armed.has(name)) process.kill(process.pid, 'SIGKILL');
}
