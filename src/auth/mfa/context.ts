import type { AuditEntry } from '../../audit/index.js';
import { LapseError } from '../../domain/errors.js';
import { getEnabledUserByName, type Executor } from '../../store/index.js';
import { auditedChange } from '../audited.js';

/** Seals and opens secrets at rest (src/secrets: AES-256-GCM bound to a context string). */
export interface SecretSealer {
  seal(plaintext: string, context: string): string;
  open(sealed: string, context: string): string;
}

/** The WebAuthn relying party: who passkeys are registered with, and the web origins allowed to use them. */
export interface RelyingParty {
  readonly id: string;
  readonly name: string;
  readonly origins: readonly string[];
}

/** What MFA may touch. */
export interface MfaContext {
  readonly db: Executor;
  readonly sealer: SecretSealer;
  /** Where refusals are logged (never with the code or assertion presented). */
  readonly logger: { warn(fields: object, message: string): void };
  /** Undefined when no origin is known for this server: passkeys are then unavailable. */
  readonly relyingParty: RelyingParty | undefined;
}

/** The local user whose factors are used: `id` is the users row, `name` the principal id. */
export interface MfaUser {
  readonly id: string;
  readonly name: string;
}

export type MfaFactor = 'totp' | 'webauthn';

/** A successful second-factor check: which factor, at the database's time. */
export interface MfaProof {
  readonly factor: MfaFactor;
  readonly at: Date;
}

export interface MfaUnit {
  readonly tx: Executor;
  /** The database's clock at the start of the transaction. */
  readonly now: Date;
  audit(entry: AuditEntry): void;
}

/** A refusal whose record (failure count, audit event) must commit before the error is thrown. */
export class Refusal {
  constructor(readonly error: LapseError) {}
}

/**
 * One MFA change and its audit events in one transaction (auditedChange). Work may return a
 * Refusal: the transaction still commits (the failure is counted and audited) and the refusal's
 * error is thrown afterwards.
 */
export async function recorded<T>(context: MfaContext, work: (unit: MfaUnit) => Promise<T | Refusal>): Promise<T> {
  const result = await auditedChange(context.db, (tx, now, audit) => work({ tx, now, audit }));
  if (result instanceof Refusal) throw result.error;
  return result;
}

/** The users row behind a principal; MFA needs one (SSO users get theirs at first sign-in). */
export async function findMfaUser(db: Executor, principalId: string): Promise<MfaUser> {
  const row = await getEnabledUserByName(db, principalId);
  if (!row) {
    throw new LapseError('forbidden', `${principalId} has no user account here, so no second factor can be enrolled or used`, {
      hint: 'Sign in once through the portal (SSO) or ask an admin to run `lapse admin user create`.',
    });
  }
  return row;
}
