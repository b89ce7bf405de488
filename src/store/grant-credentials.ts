import type { Executor } from './executor.js';

/** Which of these grants have credentials waiting to be fetched (one query for a page of grants). */
export async function grantsWithCredentials(tx: Executor, grantIds: readonly string[]): Promise<Set<string>> {
  if (grantIds.length === 0) return new Set();
  const rows = await tx
    .selectFrom('grant_credentials')
    .select('grant_id')
    .where('grant_id', 'in', [...grantIds])
    .execute();
  return new Set(rows.map((row) => row.grant_id));
}
