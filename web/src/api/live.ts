import { useQueryClient } from '@tanstack/react-query';
import { useEffect, useState } from 'react';

/** `offline`: the server is gone (stopped, unreachable) or ended the stream; the portal keeps retrying. */
export type LiveState = 'connecting' | 'live' | 'offline';

/** How long to wait before opening a new stream after the browser gave up on one. */
const RETRY_MS = 5_000;

/**
 * Live updates: one EventSource on /api/v1/events (the session cookie authenticates it). Each
 * event names a request or grant that changed; the lists and that object are re-fetched, batched
 * over 250 ms so a burst of changes costs one round of requests.
 *
 * The state says honestly whether changes are arriving: `offline` as soon as the stream breaks
 * (the server shut down, went away, or refused the stream) until a new one opens. The server ends
 * a stream with a last `closed` event saying why; when the session is no longer valid the session
 * is asked again (so the sign-in page shows) instead of retrying a stream that would be refused.
 */
export function useLiveUpdates(enabled: boolean): LiveState {
  const queryClient = useQueryClient();
  const [state, setState] = useState<LiveState>('connecting');
  const [attempt, setAttempt] = useState(0);
  useEffect(() => {
    if (!enabled) return;
    const source = new EventSource('/api/v1/events');
    const changed = new Set<string>();
    let timer: ReturnType<typeof setTimeout> | null = null;
    let retry: ReturnType<typeof setTimeout> | null = null;
    const flush = () => {
      timer = null;
      const kinds = new Set<string>();
      for (const key of changed) {
        const [kind, id] = key.split(':') as [string, string];
        kinds.add(kind);
        void queryClient.invalidateQueries({ queryKey: [kind, id] });
      }
      changed.clear();
      if (kinds.has('request')) void queryClient.invalidateQueries({ queryKey: ['requests'] });
      // NB. A request's decision makes a grant, and a grant's end changes its request's page.
      void queryClient.invalidateQueries({ queryKey: ['grants'] });
      void queryClient.invalidateQueries({ queryKey: ['request'] });
    };
    const onChange = (kind: 'request' | 'grant') => (event: MessageEvent<string>) => {
      try {
        const data = JSON.parse(event.data) as { id: string };
        changed.add(`${kind}:${data.id}`);
      } catch {
        return;
      }
      timer ??= setTimeout(flush, 250);
    };
    /** Gives up on this stream: asks who is signed in again, and opens a new stream a little later. */
    const startOver = () => {
      source.close();
      void queryClient.invalidateQueries({ queryKey: ['session'] });
      retry ??= setTimeout(() => setAttempt((n) => n + 1), RETRY_MS);
    };
    source.addEventListener('request', onChange('request'));
    source.addEventListener('grant', onChange('grant'));
    source.addEventListener('closed', (event: MessageEvent<string>) => {
      setState('offline');
      let reason = '';
      try {
        reason = (JSON.parse(event.data) as { reason?: string }).reason ?? '';
      } catch {
        reason = '';
      }
      // NB. A stream refused for its credential would be refused again (and audited): ask instead.
      if (reason === 'unauthenticated') startOver();
    });
    let reopened = attempt > 0;
    source.onopen = () => {
      setState('live');
      // What changed while the stream was down is fetched again.
      if (reopened) flush();
      reopened = true;
    };
    source.onerror = () => {
      setState('offline');
      // CLOSED: the browser will not retry by itself (the server answered with an error).
      if (source.readyState === EventSource.CLOSED) startOver();
    };
    return () => {
      if (timer) clearTimeout(timer);
      if (retry) clearTimeout(retry);
      source.close();
    };
  }, [enabled, queryClient, attempt]);
  return state;
}
