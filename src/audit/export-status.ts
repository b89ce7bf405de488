import type { AuditExportSettings } from '../domain/audit-export.js';
import { auditEventTime, databaseNow, getAuditHead, listAuditCheckpointsAfter, listExportCursors, type Executor } from '../store/index.js';

/** How far one configured export stream is behind the chain (the admin API and /metrics). */
export interface AuditExportStatus {
  /** The cursor: `sink:<name>`, `sink-checkpoints:<name>` or `witness:<name>`. */
  readonly stream: string;
  readonly kind: 'events' | 'checkpoints';
  /** The last event (or checkpoint) delivered; 0 before the first. */
  readonly seq: number;
  /** Events (or checkpoints) not yet delivered. */
  readonly behind: number;
  /** Age of the oldest event not yet delivered (0 when caught up; checkpoint streams: 0). */
  readonly lagSeconds: number;
  readonly exportedAt: string | null;
  readonly exportedTotal: number;
  /** Failed deliveries since the last good one. */
  readonly failures: number;
  readonly lastError: string | null;
  readonly lastErrorAt: string | null;
}

/** Every configured stream with its lag, read from the database (the same answer on every replica). */
export async function auditExportStatus(db: Executor, settings: AuditExportSettings): Promise<AuditExportStatus[]> {
  const streams: { stream: string; kind: 'events' | 'checkpoints' }[] = [
    ...settings.sinks.flatMap((s) => [
      { stream: `sink:${s.name}`, kind: 'events' as const },
      ...(s.checkpoints ? [{ stream: `sink-checkpoints:${s.name}`, kind: 'checkpoints' as const }] : []),
    ]),
    ...settings.witnesses.map((w) => ({ stream: `witness:${w.name}`, kind: 'checkpoints' as const })),
  ];
  if (streams.length === 0) return [];
  const [cursors, head, now] = await Promise.all([listExportCursors(db), getAuditHead(db), databaseNow(db)]);
  const byName = new Map(cursors.map((c) => [c.name, c]));
  return Promise.all(
    streams.map(async ({ stream, kind }) => {
      const cursor = byName.get(stream);
      const seq = cursor?.seq ?? 0;
      let behind = 0;
      let lagSeconds = 0;
      if (kind === 'events') {
        behind = Math.max(0, (head?.seq ?? 0) - seq);
        const oldest = behind > 0 ? await auditEventTime(db, seq + 1) : null;
        if (oldest) lagSeconds = Math.max(0, (now.getTime() - oldest.getTime()) / 1000);
      } else {
        behind = (await listAuditCheckpointsAfter(db, seq, 10_000)).length;
      }
      return {
        stream,
        kind,
        seq,
        behind,
        lagSeconds,
        exportedAt: cursor?.exportedAt?.toISOString() ?? null,
        exportedTotal: cursor?.exportedTotal ?? 0,
        failures: cursor?.failures ?? 0,
        lastError: cursor?.lastError ?? null,
        lastErrorAt: cursor?.lastErrorAt?.toISOString() ?? null,
      };
    }),
  );
}
