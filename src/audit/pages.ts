import { fetchAuditEventPage, fetchAuditEventRows, type AuditEventPage, type Executor } from '../store/index.js';
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

interface Request {
  readonly after: number;
  readonly limit: number;
  readonly page: Promise<AuditEventPage>;
}

/**
 * Streams the events with seq <= upTo to `visit`, in seq order, in pages (keyset pagination: a log
 * of millions never sits in memory).
 *
 * NB. Keyset pagination only learns where page k+1 starts when page k arrives. In an intact log
 * seqs are dense, so it starts at after + limit: pages are requested ahead on that guess, and
 * where a gap proves it wrong the guesses are dropped and the next page is asked for again.
 */
export async function readEventPages(db: Executor, upTo: number, visit: EventVisitor): Promise<void> {
  const inFlight: Request[] = [];
  const unsettled = new Set<Promise<AuditEventPage>>();
  let planned = 0;
  const requestAhead = () => {
    while (inFlight.length < PAGES_IN_FLIGHT && planned < upTo) {
      const limit = Math.min(PAGE_ROWS, upTo - planned);
      const page = fetchPage(db, planned, limit);
      unsettled.add(page);
      // Dropped guesses are never awaited; their errors are not this run's errors.
      page.then(
        () => unsettled.delete(page),
        () => unsettled.delete(page),
      );
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

// Payloads over the size limit are cut at the limit + 1 by the store (see fetchAuditEventPage).
const fetchPage = (db: Executor, after: number, limit: number) => fetchAuditEventPage(db, after, limit, MAX_EVENT_BYTES);

async function visitRows(db: Executor, after: number, limit: number, upTo: number, visit: EventVisitor): Promise<void> {
  for (const row of await fetchAuditEventRows(db, after, limit, MAX_EVENT_BYTES)) {
    if (row.seq > upTo) break;
    visit(row.seq, row.prev_hash, row.hash, row.payload);
  }
}
