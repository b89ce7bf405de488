import { useQueryClient } from '@tanstack/react-query';
import { useEffect, useState } from 'react';

export type LiveState = 'connecting' | 'live' | 'offline';

/**
 * Live updates: one EventSource on /api/v1/events (the session cookie authenticates it). Each
 * event names a request or grant that changed; the lists and that object are re-fetched, batched
 * over 250 ms so a burst of changes costs one round of requests. EventSource reconnects by itself.
 */
export function useLiveUpdates(enabled: boolean): LiveState {
  const queryClient = useQueryClient();
  const [state, setState] = useState<LiveState>('connecting');
  useEffect(() => {
    if (!enabled) return;
    const source = new EventSource('/api/v1/events');
    const changed = new Set<string>();
    let timer: ReturnType<typeof setTimeout> | null = null;
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
    source.addEventListener('request', onChange('request'));
    source.addEventListener('grant', onChange('grant'));
    source.onopen = () => setState('live');
    source.onerror = () => setState(source.readyState === EventSource.CLOSED ? 'offline' : 'connecting');
    return () => {
      if (timer) clearTimeout(timer);
      source.close();
    };
  }, [enabled, queryClient]);
  return state;
}
