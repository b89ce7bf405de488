import { selectAuditPayloads, type AuditFilter, type Executor } from '../store/index.js';
import type { AuditEvent } from './chain.js';

export type { AuditFilter } from '../store/index.js';

/** Reads audit events by what they record (see selectAuditPayloads for how the filters match). */
export async function queryAuditEvents(db: Executor, filter: AuditFilter): Promise<AuditEvent[]> {
  const payloads = await selectAuditPayloads(db, filter);
  return payloads.map((payload) => JSON.parse(payload) as AuditEvent);
}
