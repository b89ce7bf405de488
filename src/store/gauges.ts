import { sql } from 'kysely';
import type { Executor } from './executor.js';

/**
 * What /metrics reads from the database at each scrape: the same numbers on every replica, since
 * they describe the shared state. One round trip, each part served by an index (grants_status_idx,
 * requests_pending_idx, the audit head row and the checkpoints' primary key).
 */
export interface OperationalGauges {
  /** Grants whose access exists or is being set up or taken away, by status. */
  readonly grants: { readonly provisioning: number; readonly active: number; readonly revoking: number };
  readonly pendingRequests: number;
  readonly audit: {
    /** Sequence number of the newest event: how many were ever appended. */
    readonly head: number;
    /** Sequence number the newest signed checkpoint covers (0 before the first). */
    readonly signed: number;
    readonly lastCheckpointAt: Date | null;
  };
}

export async function readOperationalGauges(db: Executor): Promise<OperationalGauges> {
  const { rows } = await sql<{
    provisioning: string;
    active: string;
    revoking: string;
    pending: string;
    head: string;
    signed: string | null;
    checkpoint_at: Date | string | null;
  }>`
    SELECT
      (SELECT count(*) FROM grants WHERE status = 'provisioning') AS provisioning,
      (SELECT count(*) FROM grants WHERE status = 'active') AS active,
      (SELECT count(*) FROM grants WHERE status = 'revoking') AS revoking,
      (SELECT count(*) FROM requests WHERE status = 'pending') AS pending,
      (SELECT seq FROM audit_head WHERE id = 1) AS head,
      c.seq AS signed,
      c.created_at AS checkpoint_at
    FROM (SELECT 1) AS one
    LEFT JOIN (SELECT seq, created_at FROM audit_checkpoints ORDER BY seq DESC LIMIT 1) AS c ON true`.execute(db);
  const row = rows[0]!;
  return {
    grants: { provisioning: Number(row.provisioning), active: Number(row.active), revoking: Number(row.revoking) },
    pendingRequests: Number(row.pending),
    audit: { head: Number(row.head), signed: Number(row.signed ?? 0), lastCheckpointAt: row.checkpoint_at === null ? null : new Date(row.checkpoint_at) },
  };
}
