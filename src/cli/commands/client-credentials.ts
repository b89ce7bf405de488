import { LapseError } from '../../domain/errors.js';
import type { LapseClient } from '../client.js';
import { catalogueAnswer, credentialsAnswer } from './client-resources.js';
import { shellWord } from './client-show.js';

/**
 * Credentials a connector issued for a grant: fetched once (the server erases them), printed, and
 * never written anywhere by lapse: not to disk, not to a log, not into an error message.
 */
export async function fetchCredentials(client: LapseClient, grantId: string): Promise<Record<string, string>> {
  try {
    // NB. No Idempotency-Key: a replayed answer would hand the secret out a second time.
    const { credentials } = await client.post('/api/v1/grants/{id}/credentials', credentialsAnswer, { path: { id: grantId }, idempotent: false });
    return credentials;
  } catch (error) {
    if (error instanceof LapseError && error.code === 'gone') {
      throw new LapseError('gone', `the credentials of ${grantId} were already fetched (they are handed out once)`, {
        where: grantId,
        hint: 'If you lost them, release this grant (`lapse release`) and request access again.',
      });
    }
    throw error;
  }
}

/** Which connector serves an entitlement (for a connection hint); undefined if the catalogue says nothing. */
export async function connectorOf(client: LapseClient, target: string, entitlement: string): Promise<string | undefined> {
  try {
    const { items } = await client.get('/api/v1/catalogue', catalogueAnswer);
    return items.find((item) => item.target === target && item.entitlement === entitlement)?.connector;
  } catch {
    return undefined; // a hint is a courtesy; never fail the command for it
  }
}

/**
 * A command line that uses the credentials, for the connectors whose clients we know. Passwords
 * are never put on the command line (they would land in shell history and `ps`): the clients ask.
 */
export function connectionHint(connector: string | undefined, c: Record<string, string>): string | undefined {
  const w = (key: string) => shellWord(c[key] ?? '');
  switch (connector) {
    case 'postgres':
      if (!c.username) return undefined;
      return `psql ${shellWord(`host=${c.host ?? 'localhost'} port=${c.port ?? '5432'} dbname=${c.database ?? 'postgres'} user=${c.username}`)}   (enter the password above when asked)`;
    case 'mysql':
      if (!c.username) return undefined;
      return `mysql -h ${w('host')} -P ${c.port ? w('port') : '3306'} -u ${w('username')} -p${c.database ? ` ${w('database')}` : ''}   (enter the password above when asked)`;
    case 'redis':
      if (!c.username) return undefined;
      return `redis-cli -h ${w('host')} -p ${c.port ? w('port') : '6379'} --user ${w('username')} --askpass${c.tls === 'true' ? ' --tls' : ''}   (enter the password above when asked)`;
    case 'ssh':
      if (!c.command || !c.certificateFile) return undefined;
      return `save the certificate to ${c.certificateFile}, then: ${c.command}`;
    default:
      return undefined;
  }
}

export function describeCredentials(grantId: string, credentials: Record<string, string>, hint: string | undefined): string {
  const width = Math.max(0, ...Object.keys(credentials).map((k) => k.length));
  const lines = [`Credentials for ${grantId} (shown this once; lapse keeps no copy):`];
  for (const [key, value] of Object.entries(credentials)) lines.push(`  ${key.padEnd(width)}  ${value}`);
  if (hint) lines.push('', `Connect: ${hint}`);
  return lines.join('\n');
}
