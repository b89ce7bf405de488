import { sql } from 'kysely';
import type { Executor } from './executor.js';

/** Calls to target systems, one row each: started, then finished with an outcome (for operators and metrics). */

export interface StartedAttempt {
  readonly id: string;
  readonly grantId: string;
  readonly operation: 'provision' | 'revoke';
  readonly worker: number;
  readonly startedAt: Date;
}

export async function startConnectorAttempts(tx: Executor, attempts: readonly StartedAttempt[]): Promise<void> {
  if (attempts.length === 0) return;
  await tx
    .insertInto('connector_attempts')
    .values(
      attempts.map((a) => ({
        id: a.id,
        grant_id: a.grantId,
        operation: a.operation,
        worker: a.worker,
        started_at: a.startedAt,
        finished_at: null,
        outcome: null,
        error: null,
      })),
    )
    .execute();
}

/** Finishes attempts at `at`: each ok (error null) or failed with its error, in one statement. */
export async function finishConnectorAttempts(tx: Executor, at: Date, outcomes: readonly { id: string; error: string | null }[]): Promise<void> {
  if (outcomes.length === 0) return;
  if (outcomes.length === 1) {
    const [{ id, error }] = outcomes as [{ id: string; error: string | null }];
    await tx
      .updateTable('connector_attempts')
      .set({ finished_at: at, outcome: error === null ? 'ok' : 'error', error })
      .where('id', '=', id)
      .execute();
    return;
  }
  await sql`
    UPDATE connector_attempts AS a SET finished_at = ${at}, outcome = v.outcome, error = v.error
    FROM unnest(${outcomes.map((o) => o.id)}::text[], ${outcomes.map((o) => (o.error === null ? 'ok' : 'error'))}::text[],
                ${outcomes.map((o) => o.error)}::text[]) AS v(id, outcome, error)
    WHERE a.id = v.id`.execute(tx);
}
