import type { LapseClient } from '../client.js';
import { awaitedApprovers, requestDetail, type RequestDetail } from './client-resources.js';

/** How following a request ended. */
export type FollowOutcome = 'active' | 'denied' | 'cancelled' | 'timed_out' | 'failed' | 'ended' | 'wait_timeout';

export interface FollowResult {
  readonly outcome: FollowOutcome;
  readonly detail: RequestDetail;
}

/** Between two looks at the request when the event stream is down. */
export const POLL_INTERVAL_MS = 2_000;
/** Between two looks while the stream is up: events wake us sooner; this only guards a lost one. */
const SAFETY_INTERVAL_MS = 30_000;

/** Where the request stands, or undefined while it is still on its way. */
export function outcomeOf(detail: RequestDetail): Exclude<FollowOutcome, 'wait_timeout'> | undefined {
  const { request, grant } = detail;
  if (request.status === 'denied' || request.status === 'cancelled' || request.status === 'timed_out') return request.status;
  if (!grant) return undefined;
  if (grant.status === 'active') return 'active';
  if (grant.status === 'failed') return 'failed';
  if (grant.status === 'revoking' || grant.status === 'revoked') return 'ended';
  return undefined;
}

function stage(detail: RequestDetail): string {
  const { request, grant } = detail;
  if (grant) return `grant ${grant.id} is ${grant.status}${grant.lastError ? ` (last error: ${grant.lastError})` : ''}`;
  if (request.status === 'pending') return `pending: waiting for ${awaitedApprovers(request)}`;
  return `request is ${request.status}`;
}

/**
 * Follows a request until its access is active, it is refused or fails, or `timeoutMs` passes.
 * Listens to the server's event stream and looks again when an event names the request or its
 * grant; if the stream cannot be opened or drops, it looks every 2 s instead.
 *
 * NB. The state always comes from GET /requests/:id, never from the event itself: an event is
 * only a nudge, so a missed, repeated or reordered event cannot mislead us.
 */
export async function followRequest(client: LapseClient, requestId: string, timeoutMs: number, report: (line: string) => void): Promise<FollowResult> {
  const deadline = Date.now() + timeoutMs;
  const watched = new Set([requestId]);
  let stop = new AbortController();
  let stream: Promise<void> = Promise.resolve();
  let streaming = false;
  let streamFailed = false;
  let nudged = false;
  let wake: () => void = () => {};
  const nudge = () => {
    nudged = true;
    wake();
  };
  // The stream names the objects it is about (?subject=); once the grant exists it is reopened
  // to include it, and the nudge on opening covers whatever happened in between.
  const listen = () => {
    stop.abort();
    const current = new AbortController();
    stop = current;
    const previous = stream;
    stream = previous.then(() =>
      client
        .events(
          '/api/v1/events',
          { subject: [...watched].join(',') },
          current.signal,
          (event) => {
            const id = (event.data as { id?: unknown } | undefined)?.id;
            if (typeof id === 'string' && watched.has(id)) nudge();
          },
          () => {
            streaming = true;
            nudge(); // look once more: something may have happened before the stream opened
          },
        )
        .catch(() => undefined)
        .finally(() => {
          if (current.signal.aborted) return;
          streamFailed = true;
          if (streaming) report('(live updates lost; checking every 2 s)');
          streaming = false;
          wake();
        }),
    );
  };
  listen();

  let said = '';
  try {
    for (;;) {
      nudged = false;
      const detail = await client.get('/api/v1/requests/{id}', requestDetail, { path: { id: requestId } });
      if (detail.request.grantId && !watched.has(detail.request.grantId)) {
        watched.add(detail.request.grantId);
        if (!streamFailed) listen();
      }
      const now = stage(detail);
      if (now !== said) report(now);
      said = now;
      const outcome = outcomeOf(detail);
      if (outcome) return { outcome, detail };
      const left = deadline - Date.now();
      if (left <= 0) return { outcome: 'wait_timeout', detail };
      if (!nudged) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, Math.min(left, streaming ? SAFETY_INTERVAL_MS : POLL_INTERVAL_MS));
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        wake = () => {};
      }
    }
  } finally {
    stop.abort();
    await stream;
  }
}
