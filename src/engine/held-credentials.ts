import type { Grant } from '../domain/grant.js';
import { putCredentials } from '../store/index.js';
import type { EngineContext, UnitOfWork } from './context.js';

/** Seals what was issued for the grant's principal, bound to the grant, until fetched once (src/engine/credentials.ts). */
export async function holdCredentials(
  context: EngineContext,
  unit: UnitOfWork,
  grant: Pick<Grant, 'id' | 'principalId'>,
  credentials: Readonly<Record<string, string>>,
): Promise<void> {
  const sealed = context.sealer.seal(JSON.stringify(credentials), credentialsContext(grant.id));
  await putCredentials(unit.tx, { grantId: grant.id, principalId: grant.principalId, keyId: context.sealer.keyId, sealed, createdAt: unit.now });
}

export function credentialsContext(grantId: string): string {
  return `grant-credentials:${grantId}`;
}
