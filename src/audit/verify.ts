import type { KeyObject } from 'node:crypto';
import { auditSeqBounds, getAuditHead, listAuditCheckpoints, type Executor } from '../store/index.js';
import { chainHash, GENESIS_HASH, MAX_EVENT_BYTES } from './chain.js';
import { verifyCheckpointSignature } from './checkpoints.js';
import { readEventPages } from './pages.js';
import { keyIdOf } from './signing-key.js';

export type ProblemKind =
  'edited' | 'gap' | 'chain_break' | 'seq_mismatch' | 'truncated' | 'checkpoint_mismatch' | 'checkpoint_signature' | 'checkpoint_unverified' | 'head_mismatch';

export interface VerifyProblem {
  readonly seq: number;
  readonly kind: ProblemKind;
  readonly message: string;
}

export interface VerifyResult {
  readonly ok: boolean;
  readonly events: number;
  readonly lastSeq: number;
  readonly checkpoints: number;
  readonly lastCheckpoint: { readonly seq: number; readonly at: string; readonly keyId: string } | null;
  readonly problems: readonly VerifyProblem[];
  /** Problems found but not listed (past MAX_PROBLEMS). */
  readonly problemsOmitted: number;
}

/** Past this many problems the log is plainly broken; listing more helps nobody. */
const MAX_PROBLEMS = 1_000;

/**
 * Recomputes the whole chain from the stored bytes and checks every signed checkpoint against it.
 * Detects edited, deleted, inserted and reordered events, and a tail truncated before the last
 * checkpoint. It cannot see events removed from the tail after the last checkpoint, which is why
 * checkpoints should also be shipped off the database (see docs/audit.md).
 *
 * Safe on a live log: it verifies the chain up to the head it reads first, so events appended
 * meanwhile are left for the next run instead of being reported as a mismatch.
 */
export async function verifyAuditChain(db: Executor, options: { publicKeys: readonly KeyObject[] }): Promise<VerifyResult> {
  const problems: VerifyProblem[] = [];
  let omitted = 0;
  const report = (seq: number, kind: ProblemKind, message: string) => {
    if (problems.length < MAX_PROBLEMS) problems.push({ seq, kind, message });
    else omitted += 1;
  };

  // NB. Checkpoints before the head: a checkpoint only ever names a committed head, so one read
  // first can never lie beyond the head read after it unless the log was cut back.
  const checkpoints = await listAuditCheckpoints(db);
  const head = await getAuditHead(db);
  const headSeq = head ? head.seq : Number.MAX_SAFE_INTEGER;
  if (!head) report(0, 'head_mismatch', 'the chain head row is missing');

  const keys = new Map(options.publicKeys.map((key) => [keyIdOf(key), key]));
  for (const checkpoint of checkpoints) {
    const key = keys.get(checkpoint.key_id);
    if (!key) {
      report(checkpoint.seq, 'checkpoint_unverified', `checkpoint at seq ${checkpoint.seq} is signed by key ${checkpoint.key_id}, which was not supplied`);
    } else if (!verifyCheckpointSignature(key, checkpoint.seq, checkpoint.hash, checkpoint.signature)) {
      report(checkpoint.seq, 'checkpoint_signature', `checkpoint at seq ${checkpoint.seq} has an invalid signature (forged or altered)`);
    }
  }
  const checkpointAt = new Map(checkpoints.map((c) => [c.seq, c]));
  const checkpointsSeen = new Set<number>();

  let expectedSeq = 1;
  let prev = GENESIS_HASH;
  let events = 0;
  let lastSeq = 0;
  // The hot loop: one call per event, nothing allocated but the hash.
  const visit = (seq: number, prevHash: string, hash: string, payload: string) => {
    events += 1;
    if (seq !== expectedSeq) report(seq, 'gap', `expected seq ${expectedSeq} but found ${seq}: events were deleted or inserted`);
    if (prevHash !== prev) report(seq, 'chain_break', `event ${seq} does not follow the event before it: events were deleted, inserted or reordered`);
    // The length test matters: pages clamp an oversized payload (see pages.ts), and a clamped
    // payload whose hash was recomputed to match must not pass for the stored one.
    if (payload.length > MAX_EVENT_BYTES || chainHash(prevHash, payload) !== hash) report(seq, 'edited', `event ${seq} does not match its hash: it was edited`);
    const claimed = payloadSeq(payload);
    if (claimed !== seq) report(seq, 'seq_mismatch', `event stored at seq ${seq} says it is event ${claimed}: events were moved`);
    const checkpoint = checkpointAt.get(seq);
    if (checkpoint) {
      checkpointsSeen.add(seq);
      if (checkpoint.hash !== hash) report(seq, 'checkpoint_mismatch', `event ${seq} differs from what the checkpoint signed`);
    }
    // Resynchronise on the stored row so one tampered event is reported once, not forever after.
    prev = hash;
    expectedSeq = seq + 1;
    lastSeq = seq;
  };
  await readEventPages(db, headSeq, visit);

  for (const checkpoint of checkpoints) {
    if (checkpoint.seq > lastSeq) {
      report(checkpoint.seq, 'truncated', `a checkpoint covers seq ${checkpoint.seq} but the log ends at ${lastSeq}: the tail was truncated`);
    } else if (!checkpointsSeen.has(checkpoint.seq)) {
      report(checkpoint.seq, 'checkpoint_mismatch', `the event at seq ${checkpoint.seq}, which a checkpoint signed, is missing`);
    }
  }
  if (head && (lastSeq !== headSeq || prev !== head.hash)) {
    report(lastSeq, 'head_mismatch', `the chain head (seq ${headSeq}) does not match the last event (seq ${lastSeq})`);
  }
  // Pages start after seq 0, and events past the head cannot have been appended through the head
  // lock. Read in this order (events, then head) a concurrent append can never look like one.
  const { min: minSeq, max: maxSeq } = await auditSeqBounds(db);
  const headNow = await getAuditHead(db);
  if (minSeq < 1) report(minSeq, 'gap', `an event is stored at seq ${minSeq}, before the first (1): it was inserted or moved`);
  if (headNow && maxSeq > headNow.seq) {
    report(maxSeq, 'head_mismatch', `events up to seq ${maxSeq} exist beyond the chain head (seq ${headNow.seq}): they were inserted, or the head was rewound`);
  }

  const last = checkpoints.at(-1);
  return {
    ok: problems.length === 0,
    events,
    lastSeq,
    checkpoints: checkpoints.length,
    lastCheckpoint: last ? { seq: last.seq, at: new Date(last.created_at).toISOString(), keyId: last.key_id } : null,
    problems,
    problemsOmitted: omitted,
  };
}

/** The payload's own seq, read without a full JSON parse (keys are sorted; see canonical-json). */
function payloadSeq(payload: string): number {
  // NB. "seq" sorts after "data", so the last occurrence of the key is the top-level one; a string
  // value cannot contain the unescaped pattern.
  const at = payload.lastIndexOf('"seq":');
  if (at < 0) return Number.NaN;
  let end = at + 6;
  while (end < payload.length && payload.charCodeAt(end) >= 48 && payload.charCodeAt(end) <= 57) end++;
  return Number(payload.slice(at + 6, end));
}
