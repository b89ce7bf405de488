import { sql, type Kysely } from 'kysely';
import { AUDIT_SUBJECT_SQL, type Database } from '../store/index.js';
import type { AuditEvent } from './chain.js';

export interface AuditFilter {
  readonly action?: string;
  readonly actor?: string;
  /** One subject, or several (a request and its grant, for a timeline). */
  readonly subjects?: readonly string[];
  readonly since?: Date;
  readonly until?: Date;
  /** Continues a previous page: events with a lower sequence number. */
  readonly beforeSeq?: number;
  /** Oldest first (timelines, exports) instead of newest first (search). */
  readonly ascending?: boolean;
  /** Continues an ascending page: events with a higher sequence number. */
  readonly afterSeq?: number;
  readonly limit: number;
}

/**
 * Reads audit events by what they record. The payload is the hashed canonical JSON (the one
 * source of truth), so filters look inside it; subjects have an index on an expression over the
 * text (migration 0007), which this query repeats exactly so the planner uses it.
 */
export async function queryAuditEvents(db: Kysely<Database>, filter: AuditFilter): Promise<AuditEvent[]> {
  const field = (name: string) => sql<string>`(payload::jsonb ->> ${name})`;
  let query = db.selectFrom('audit_events').select(['seq', 'payload']);
  if (filter.action) {
    // `grant.*` selects a family of actions.
    query = filter.action.endsWith('.*')
      ? query.where(field('action'), 'like', `${filter.action.slice(0, -1).replace(/[\\%_]/g, '\\$&')}%`)
      : query.where(field('action'), '=', filter.action);
  }
  if (filter.actor) query = query.where(field('actor'), '=', filter.actor);
  if (filter.subjects && filter.subjects.length > 0) query = query.where(sql<string>`${sql.raw(AUDIT_SUBJECT_SQL)}`, 'in', [...filter.subjects]);
  if (filter.since) query = query.where(field('at'), '>=', filter.since.toISOString());
  if (filter.until) query = query.where(field('at'), '<', filter.until.toISOString());
  if (filter.beforeSeq !== undefined) query = query.where('seq', '<', String(filter.beforeSeq));
  if (filter.afterSeq !== undefined) query = query.where('seq', '>', String(filter.afterSeq));
  const rows = await query.orderBy('seq', filter.ascending ? 'asc' : 'desc').limit(filter.limit).execute();
  return rows.map((row) => JSON.parse(row.payload) as AuditEvent);
}
