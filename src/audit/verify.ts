import type { KeyObject } from 'node:crypto';
import { sql, type Kysely } from 'kysely';
import type { Database } from '../store/index.js';
import { chainHash, GENESIS_HASH } from './chain.js';
import { verifyCheckpointSignature } from './checkpoints.js';
import { keyIdOf } from './signing-key.js';

export type ProblemKind =
  | 'edited'
  | 'gap'
  | 'chain_break'
  | 'seq_mismatch'
  | 'truncated'
  | 'checkpoint_mismatch'
  | 'checkpoint_signature'
  | 'checkpoint_unverified'
  | 'head_mismatch';

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
  readonly lastCheckpoint: { readonly seq: number; readonly at: string } | null;
  readonly problems: readonly VerifyProblem[];
}

const PAGE = 10_000;
/** Past this many problems the log is plainly broken; listing more helps nobody. */
const MAX_PROBLEMS = 1_000;

/**
 * Recomputes the whole chain from the stored bytes and checks every signed checkpoint against it.
 * Detects edited, deleted, inserted and reordered events, and a tail truncated since the last
 * checkpoint. It cannot see events removed from the tail after the last checkpoint, which is why
 * checkpoints should also be shipped off the database (see docs/audit.md).
 */
export async function verifyAuditChain(db: Kysely<Database>, options: { publicKeys: readonly KeyObject[] }): Promise<VerifyResult> {
  const problems: VerifyProblem[] = [];
  const report = (seq: number, kind: ProblemKind, message: string) => {
    if (problems.length < MAX_PROBLEMS) problems.push({ seq, kind, message });
  };
  const keys = new Map(options.publicKeys.map((key) => [keyIdOf(key), key]));
  const checkpoints = (await db.selectFrom('audit_checkpoints').selectAll().orderBy('seq').execute()).map((c) => ({ ...c, seq: Number(c.seq) }));
  const checkpointAt = new Map(checkpoints.map((c) => [c.seq, c]));
  for (const checkpoint of checkpoints) {
    const key = keys.get(checkpoint.key_id);
    if (!key) {
      report(checkpoint.seq, 'checkpoint_unverified', `checkpoint at seq ${checkpoint.seq} is signed by key ${checkpoint.key_id}, which was not supplied`);
    } else if (!verifyCheckpointSignature(key, checkpoint.seq, checkpoint.hash, checkpoint.signature)) {
      report(checkpoint.seq, 'checkpoint_signature', `checkpoint at seq ${checkpoint.seq} has an invalid signature (forged or altered)`);
    }
  }

  let expectedSeq = 1;
  let prev = GENESIS_HASH;
  let events = 0;
  let after = 0;
  for (;;) {
    // NB. One string per page instead of 10,000 row objects: reading rows dominates verification,
    // and canonical JSON never contains a raw newline, so lines split safely.
    const { rows } = await sql<{ page: string | null }>`
      SELECT string_agg(seq::text || ' ' || prev_hash || ' ' || hash || ' ' || payload, E'\n' ORDER BY seq) AS page
      FROM (SELECT seq, prev_hash, hash, payload FROM audit_events WHERE seq > ${after} ORDER BY seq LIMIT ${PAGE}) AS p`.execute(db);
    const lines = rows[0]?.page ? rows[0].page.split('\n') : [];
    for (const line of lines) {
      const a = line.indexOf(' ');
      const seq = Number(line.slice(0, a));
      const prevHash = line.slice(a + 1, a + 65);
      const hash = line.slice(a + 66, a + 130);
      const payload = line.slice(a + 131);
      events += 1;
      if (seq !== expectedSeq) report(seq, 'gap', `expected seq ${expectedSeq} but found ${seq}: events were deleted or inserted`);
      if (prevHash !== prev) report(seq, 'chain_break', `event ${seq} does not follow the event before it: events were deleted, inserted or reordered`);
      if (chainHash(prevHash, payload) !== hash) report(seq, 'edited', `event ${seq} does not match its hash: it was edited`);
      if (payloadSeq(payload) !== seq) report(seq, 'seq_mismatch', `event stored at seq ${seq} says it is event ${payloadSeq(payload)}: events were moved`);
      const checkpoint = checkpointAt.get(seq);
      if (checkpoint && checkpoint.hash !== hash) report(seq, 'checkpoint_mismatch', `event ${seq} differs from what the checkpoint signed`);
      // Resynchronise on the stored row so one tampered event is reported once, not forever after.
      prev = hash;
      expectedSeq = seq + 1;
      after = seq;
    }
    if (lines.length < PAGE) break;
  }
  const lastSeq = after;
  for (const checkpoint of checkpoints) {
    if (checkpoint.seq > lastSeq) {
      report(checkpoint.seq, 'truncated', `a checkpoint covers seq ${checkpoint.seq} but the log ends at ${lastSeq}: the tail was truncated`);
    }
  }
  const head = await db.selectFrom('audit_head').select(['seq', 'hash']).where('id', '=', 1).executeTakeFirst();
  if (!head || Number(head.seq) !== lastSeq || (lastSeq > 0 && head.hash !== prev)) {
    report(lastSeq, 'head_mismatch', `the chain head (seq ${head?.seq ?? 'missing'}) does not match the last event (seq ${lastSeq})`);
  }
  const last = checkpoints.at(-1);
  return {
    ok: problems.length === 0,
    events,
    lastSeq,
    checkpoints: checkpoints.length,
    lastCheckpoint: last ? { seq: last.seq, at: new Date(last.created_at).toISOString() } : null,
    problems,
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
