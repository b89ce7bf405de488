import { findGrantInForce } from '../store/index.js';
import { type EngineContext } from './context.js';

export interface AccessCheck {
  readonly allowed: boolean;
  readonly grantId: string | null;
  readonly expiresAt: Date | null;
}

/** Does the principal hold the entitlement right now? Says no at expiresAt + 0, by the database clock. */
export async function checkAccess(context: EngineContext, principalId: string, target: string, entitlement: string): Promise<AccessCheck> {
  const grant = await findGrantInForce(context.store.db, principalId, target, entitlement);
  return grant ? { allowed: true, grantId: grant.id, expiresAt: grant.expiresAt } : { allowed: false, grantId: null, expiresAt: null };
}
