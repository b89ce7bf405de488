import { sql, type Kysely } from 'kysely';
import type { Database } from '../store/index.js';
import { MAX_EVENT_BYTES } from './chain.js';

export type EventVisitor = (seq: number, prevHash: string, hash: string, payload: string) => void;

/**
 * Rows per page. Large enough that a query's fixed cost is noise (it is large on PGlite), small
 * enough that even a page of events all at the size limit is a string V8 can hold (2,500 x 64 KiB
 * = 160 MiB; a typical page is under 1 MB).
 */
export const PAGE_ROWS = 2_500;
/**
 * Pages requested ahead. On PostgreSQL each runs on its own connection while this process hashes
 * the current one (measured ~300k -> ~430k events/s); PGlite, one session, just queues them.
 */
const PAGES_IN_FLIGHT = 3;

interface Page {
  readonly text: string | null;
  readonly rows: number;
  readonly last: string | null;
  /** Every hash column is 64 bytes, so the fixed offsets in a line are where the fields are. */
  readonly plain: boolean;
}

interface Request {
  readonly after: number;
  readonly limit: number;
  readonly page: Promise<Page>;
}

/**
 * Streams the events with seq <= upTo to `visit`, in seq order, in pages (keyset pagination: a log
 * of millions never sits in memory).
 *
 * NB. Keyset pagination only learns where page k+1 starts when page k arrives. In an intact log
 * seqs are dense, so it starts at after + limit: pages are requested ahead on that guess, and
 * where a gap proves it wrong the guesses are dropped and the next page is asked for again.
 */
export async function readEventPages(db: Kysely<Database>, upTo: number, visit: EventVisitor): Promise<void> {
  const inFlight: Request[] = [];
  const unsettled = new Set<Promise<Page>>();
  let planned = 0;
  const requestAhead = () => {
    while (inFlight.length < PAGES_IN_FLIGHT && planned < upTo) {
      const limit = Math.min(PAGE_ROWS, upTo - planned);
      const page = fetchPage(db, planned, limit);
      unsettled.add(page);
      // Dropped guesses are never awaited; their errors are not this run's errors.
      page.then(() => unsettled.delete(page), () => unsettled.delete(page));
      inFlight.push({ after: planned, limit, page });
      planned += limit;
    }
  };
  const replan = (after: number) => {
    inFlight.length = 0;
    planned = after;
  };

  let after = 0;
  requestAhead();
  try {
    while (inFlight.length > 0) {
      const request = inFlight.shift()!;
      if (request.after !== after) {
        replan(after);
        requestAhead();
        continue;
      }
      const page = await request.page;
      if (page.rows === 0 || page.last === null) return;
      const from = after;
      after = Number(page.last);
      if (after !== request.after + request.limit) replan(after);
      requestAhead();
      const lines = page.text === null ? [] : page.text.split('\n');
      if (page.plain && lines.length === page.rows) {
        for (const line of lines) {
          const space = line.indexOf(' ');
          const seq = Number(line.slice(0, space));
          if (seq > upTo) return;
          visit(seq, line.slice(space + 1, space + 65), line.slice(space + 66, space + 130), line.slice(space + 131));
        }
      } else {
        // A payload with a raw newline (canonical JSON never has one), a hash of the wrong length
        // or a NULL (constraints dropped) would make the lines lie about the rows: read this page
        // row by row instead.
        await visitRows(db, from, page.rows, upTo, visit);
      }
    }
  } finally {
    // Leave no query running behind the caller's back (it may close the store next).
    await Promise.allSettled([...unsettled]);
  }
}

// NB. One string per page instead of thousands of row objects: moving rows out of the database
// dominates verification. Payloads over the size limit are cut at the limit + 1, so a huge forged
// row costs no memory and still fails its hash (and the verifier's length test).
const clampedPayload = sql`CASE WHEN octet_length(payload) > ${MAX_EVENT_BYTES} THEN left(payload, ${MAX_EVENT_BYTES + 1}) ELSE payload END`;

async function fetchPage(db: Kysely<Database>, after: number, limit: number): Promise<Page> {
  const { rows } = await sql<{ text: string | null; rows: number; last: string | null; plain: boolean | null }>`
    SELECT string_agg(seq::text || ' ' || prev_hash || ' ' || hash || ' ' || payload, E'\n' ORDER BY seq) AS text,
           count(*)::int AS rows, max(seq)::text AS last,
           bool_and(octet_length(prev_hash) = 64 AND octet_length(hash) = 64) AS plain
    FROM (SELECT seq, prev_hash, hash, ${clampedPayload} AS payload FROM audit_events WHERE seq > ${after} ORDER BY seq LIMIT ${limit}) AS page`.execute(db);
  const row = rows[0]!;
  return { text: row.text, rows: row.rows, last: row.last, plain: row.plain === true };
}

async function visitRows(db: Kysely<Database>, after: number, limit: number, upTo: number, visit: EventVisitor): Promise<void> {
  const { rows } = await sql<{ seq: string; prev_hash: string; hash: string; payload: string }>`
    SELECT seq, coalesce(prev_hash, '') AS prev_hash, coalesce(hash, '') AS hash, coalesce(${clampedPayload}, '') AS payload
    FROM audit_events WHERE seq > ${after} ORDER BY seq LIMIT ${limit}`.execute(db);
  for (const row of rows) {
    if (Number(row.seq) > upTo) break;
    visit(Number(row.seq), row.prev_hash, row.hash, row.payload);
  }
}
