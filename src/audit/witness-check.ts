import type { KeyObject } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { canonicalJson } from '../domain/canonical-json.js';
import { LapseError } from '../domain/errors.js';
import { fetchAuditEventRows, getAuditHead, listAuditCheckpoints, type Executor } from '../store/index.js';
import { chainHash, MAX_EVENT_BYTES } from './chain.js';
import { verifyCheckpointSignature } from './checkpoints.js';
import { keyIdOf } from './signing-key.js';

/**
 * Checks the database against a copy kept elsewhere: a witness file or a sink's JSON-lines export
 * (`{"type":"event",…}` and `{"type":"checkpoint",…}` lines, see export-formats.ts).
 *  - `--witness`: the database must hold every checkpoint and event the witness saw, unchanged:
 *    fewer (deleted checkpoints, a cut tail with the head rewound) or different ones fail.
 *  - `--against`: the export must be complete (no gap), untampered (every hash recomputes and
 *    links), and anchored: a signed checkpoint must match it, which proves it up to that seq.
 */
export type WitnessProblemKind =
  | 'witness_unreadable'
  | 'witness_invalid'
  | 'witness_checkpoint_missing'
  | 'witness_event_missing'
  | 'witness_mismatch'
  | 'witness_ahead'
  | 'export_gap'
  | 'export_edited'
  | 'export_chain_break'
  | 'export_conflict'
  | 'export_checkpoint_mismatch'
  | 'export_unanchored';

export interface WitnessProblem {
  readonly seq: number;
  readonly kind: WitnessProblemKind;
  readonly message: string;
}

interface CopiedEvent {
  readonly seq: number;
  readonly hash: string;
  readonly prevHash: string;
  readonly payload: string;
}
interface CopiedCheckpoint {
  readonly seq: number;
  readonly hash: string;
  readonly keyId: string;
  readonly signature: string;
}

export interface ExportCopy {
  readonly source: string;
  readonly events: Map<number, CopiedEvent>;
  readonly checkpoints: Map<number, CopiedCheckpoint>;
  readonly problems: WitnessProblem[];
}

/** A line is an event of at most MAX_EVENT_BYTES plus its links; anything longer is not ours. */
const MAX_LINE = MAX_EVENT_BYTES * 2 + 1024;
const HEX64 = /^[0-9a-f]{64}$/;

/** Reads a witness file or JSON-lines export line by line (never whole into memory). */
export async function readExportCopy(path: string): Promise<ExportCopy> {
  const copy: ExportCopy = { source: path, events: new Map(), checkpoints: new Map(), problems: [] };
  const problem = (seq: number, kind: WitnessProblemKind, message: string) => copy.problems.length < 1_000 && copy.problems.push({ seq, kind, message });
  let stream;
  try {
    stream = createReadStream(path, { encoding: 'utf8' });
    await new Promise((resolve, reject) => stream!.once('open', resolve).once('error', reject));
  } catch (error) {
    throw new LapseError('not_found', `cannot read ${path}: ${(error as Error).message}`, {
      where: path,
      hint: 'Give the path of a witness file or a JSON-lines audit export.',
    });
  }
  let n = 0;
  for await (const line of createInterface({ input: stream, crlfDelay: Infinity })) {
    n += 1;
    if (line.trim() === '') continue;
    if (line.length > MAX_LINE) {
      problem(0, 'witness_unreadable', `${path}:${n}: line longer than ${MAX_LINE} characters`);
      continue;
    }
    let record: { type?: unknown; seq?: unknown; hash?: unknown; prev_hash?: unknown; event?: unknown; checkpoint?: Record<string, unknown> };
    try {
      record = JSON.parse(line) as typeof record;
    } catch {
      problem(0, 'witness_unreadable', `${path}:${n}: not JSON`);
      continue;
    }
    if (record.type === 'event' && typeof record.seq === 'number' && typeof record.hash === 'string' && typeof record.prev_hash === 'string' && record.event) {
      const event: CopiedEvent = { seq: record.seq, hash: record.hash, prevHash: record.prev_hash, payload: canonicalJson(record.event) };
      const seen = copy.events.get(event.seq);
      // A repeat (at-least-once delivery) is the same record; a different one at the same seq is not.
      if (seen && (seen.hash !== event.hash || seen.payload !== event.payload))
        problem(event.seq, 'export_conflict', `${path}:${n}: two different events at seq ${event.seq}`);
      else copy.events.set(event.seq, event);
    } else if (record.type === 'checkpoint' && record.checkpoint) {
      const c = record.checkpoint;
      if (typeof c.seq !== 'number' || typeof c.hash !== 'string' || typeof c.keyId !== 'string' || typeof c.signature !== 'string') {
        problem(0, 'witness_unreadable', `${path}:${n}: malformed checkpoint`);
        continue;
      }
      copy.checkpoints.set(c.seq, { seq: c.seq, hash: c.hash, keyId: c.keyId, signature: c.signature });
    } else {
      problem(0, 'witness_unreadable', `${path}:${n}: neither an event nor a checkpoint record (only the jsonl format can be checked)`);
    }
  }
  return copy;
}

function signedBy(keys: Map<string, KeyObject>, c: CopiedCheckpoint): boolean {
  const key = keys.get(c.keyId);
  return key !== undefined && HEX64.test(c.hash) && verifyCheckpointSignature(key, c.seq, c.hash, c.signature);
}

/** The database against what a witness saw: every witnessed checkpoint and event must still be there, unchanged. */
export async function checkWitness(db: Executor, copy: ExportCopy, publicKeys: readonly KeyObject[]): Promise<WitnessProblem[]> {
  const problems = [...copy.problems];
  const keys = new Map(publicKeys.map((k) => [keyIdOf(k), k]));
  const stored = new Map((await listAuditCheckpoints(db)).map((c) => [c.seq, c]));
  const head = await getAuditHead(db);
  const headSeq = head?.seq ?? 0;
  let highest = 0;
  for (const c of copy.checkpoints.values()) {
    if (!signedBy(keys, c)) {
      problems.push({
        seq: c.seq,
        kind: 'witness_invalid',
        message: `${copy.source}: the checkpoint at seq ${c.seq} is not validly signed by a supplied key: the witness copy cannot be trusted for it`,
      });
      continue;
    }
    highest = Math.max(highest, c.seq);
    const mine = stored.get(c.seq);
    if (!mine)
      problems.push({
        seq: c.seq,
        kind: 'witness_checkpoint_missing',
        message: `the database has no checkpoint at seq ${c.seq}, which ${copy.source} saw signed: checkpoints were deleted`,
      });
    else if (mine.hash !== c.hash)
      problems.push({ seq: c.seq, kind: 'witness_mismatch', message: `the checkpoint at seq ${c.seq} differs from the one ${copy.source} saw` });
  }
  const seqs = [...copy.events.keys()].sort((a, b) => a - b);
  for (const seq of seqs) highest = Math.max(highest, seq);
  // Compare witnessed events page by page against the stored rows.
  for (let i = 0; i < seqs.length;) {
    const from = seqs[i]!;
    const rows = await fetchAuditEventRows(db, from - 1, 2_500, MAX_EVENT_BYTES);
    const bySeq = new Map(rows.map((r) => [r.seq, r]));
    const until = rows.length === 2_500 ? rows.at(-1)!.seq : Number.MAX_SAFE_INTEGER;
    for (; i < seqs.length && seqs[i]! <= until; i++) {
      const seen = copy.events.get(seqs[i]!)!;
      const row = bySeq.get(seen.seq);
      if (!row)
        problems.push({ seq: seen.seq, kind: 'witness_event_missing', message: `the database has no event at seq ${seen.seq}, which ${copy.source} received` });
      else if (row.hash !== seen.hash || row.payload !== seen.payload)
        problems.push({ seq: seen.seq, kind: 'witness_mismatch', message: `event ${seen.seq} differs from the copy ${copy.source} received` });
    }
  }
  if (highest > headSeq) {
    problems.push({
      seq: highest,
      kind: 'witness_ahead',
      message: `the database holds fewer events (head at seq ${headSeq}) than ${copy.source} saw (seq ${highest}): the tail was cut and the head rewound`,
    });
  }
  return problems;
}

export interface AgainstResult {
  readonly first: number;
  readonly last: number;
  readonly events: number;
  /** The highest seq a signed checkpoint proves the export up to (0: none). */
  readonly provenThrough: number;
  readonly problems: WitnessProblem[];
}

/** Proves an export complete and untampered for its range against the signed checkpoints (the database's and its own). */
export async function checkExportAgainst(db: Executor, copy: ExportCopy, publicKeys: readonly KeyObject[]): Promise<AgainstResult> {
  const problems = [...copy.problems];
  const keys = new Map(publicKeys.map((k) => [keyIdOf(k), k]));
  const seqs = [...copy.events.keys()].sort((a, b) => a - b);
  const first = seqs[0] ?? 0;
  const last = seqs.at(-1) ?? 0;
  let prev: CopiedEvent | undefined;
  for (const seq of seqs) {
    const event = copy.events.get(seq)!;
    if (prev && seq !== prev.seq + 1) problems.push({ seq, kind: 'export_gap', message: `events ${prev.seq + 1}..${seq - 1} are missing from the export` });
    else if (prev && event.prevHash !== prev.hash)
      problems.push({ seq, kind: 'export_chain_break', message: `event ${seq} does not follow event ${prev.seq} in the export` });
    if (chainHash(event.prevHash, event.payload) !== event.hash)
      problems.push({ seq, kind: 'export_edited', message: `event ${seq} in the export does not match its hash: it was edited` });
    prev = event;
  }
  const anchors = [
    ...(await listAuditCheckpoints(db)).map((c) => ({ seq: c.seq, hash: c.hash, keyId: c.key_id, signature: c.signature })),
    ...copy.checkpoints.values(),
  ].filter((c) => c.seq >= first && c.seq <= last && signedBy(keys, c));
  let provenThrough = 0;
  for (const anchor of anchors) {
    const event = copy.events.get(anchor.seq);
    if (!event || event.hash !== anchor.hash)
      problems.push({ seq: anchor.seq, kind: 'export_checkpoint_mismatch', message: `the export's event ${anchor.seq} is not the one the checkpoint signed` });
    else provenThrough = Math.max(provenThrough, anchor.seq);
  }
  if (seqs.length > 0 && provenThrough === 0) {
    problems.push({
      seq: last,
      kind: 'export_unanchored',
      message: `no signed checkpoint falls in ${first}..${last}: the export cannot be proven yet (wait for the next checkpoint, or export further)`,
    });
  }
  return { first, last, events: seqs.length, provenThrough, problems };
}
