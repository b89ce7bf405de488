import { sql, type Kysely } from 'kysely';

/**
 * Why: the dashboard's figures (GET /api/v1/stats) are computed over every row in a window of
 * time, not over the latest page, so each of its queries needs an index that starts at the window:
 * requests by creation time (status included, so counting outcomes reads the index alone),
 * person-approved requests by decision time (partial: auto-approvals never need it), and grants by
 * when they ended (NULL for grants not ended, which btree indexes too) to find those overlapping
 * the window. NB. Plain CREATE INDEX (migrations run in a transaction): on a large table it blocks
 * writes while it builds.
 */
const statements = [
  sql`CREATE INDEX requests_created_idx ON requests (created_at, status)`,
  sql`CREATE INDEX requests_approved_by_people_idx ON requests (decided_at) WHERE status = 'approved' AND jsonb_array_length(stages) > 0`,
  sql`CREATE INDEX grants_ended_idx ON grants (ended_at)`,
];

export async function up(db: Kysely<unknown>): Promise<void> {
  for (const statement of statements) await statement.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const index of ['grants_ended_idx', 'requests_approved_by_people_idx', 'requests_created_idx']) {
    await sql`DROP INDEX IF EXISTS ${sql.ref(index)}`.execute(db);
  }
}
