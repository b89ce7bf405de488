import { LapseError } from '../domain/errors.js';
import { viaData } from '../domain/principal.js';
import { takeCredentials } from '../store/index.js';
import { transact, type EngineContext } from './context.js';
import { fetchCredentialsInput, parseInput, type FetchCredentialsInput } from './inputs.js';
import { credentialsContext } from './held-credentials.js';
import { requireGrant } from './grant-ending.js';

/**
 * The grant's principal fetches the credentials its connector issued (an ephemeral account's
 * password, a certificate). Handed out once: the sealed copy is deleted in the same transaction,
 * so a second fetch, by anyone, finds nothing.
 */
export async function fetchCredentials(context: EngineContext, raw: FetchCredentialsInput): Promise<Record<string, string>> {
  const input = parseInput(fetchCredentialsInput, raw, 'credentials');
  return transact(context, async (unit) => {
    const grant = await requireGrant(unit, input.grantId, (g) => g.principalId === input.by.id);
    if (grant.status !== 'active') {
      throw new LapseError('invalid_transition', `grant ${grant.id} is ${grant.status}; credentials are handed out only while it is active`, {
        where: grant.id,
        ...(grant.status === 'provisioning' ? { hint: 'Wait until the grant is active, then fetch them.' } : {}),
      });
    }
    const held = await takeCredentials(unit.tx, grant.id);
    if (!held) {
      throw new LapseError('gone', `there are no credentials waiting for grant ${grant.id}`, {
        where: grant.id,
        hint: 'Credentials are handed out once and then erased; if they were lost, release the grant and request access again.',
      });
    }
    const credentials = JSON.parse(context.sealer.open(held.sealed, credentialsContext(grant.id))) as Record<string, string>;
    await unit.audit({
      action: 'grant.credentials_fetched',
      actor: input.by.id,
      subject: grant.id,
      data: { ...viaData(input.by), entitlement: `${grant.target}/${grant.entitlement}`, fields: Object.keys(credentials).sort() },
    });
    return credentials;
  });
}
