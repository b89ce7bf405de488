/** An open `GET /api/v1/events` stream read as text, as a browser's EventSource would receive it. */
export interface OpenStream {
  readonly status: number;
  /** Everything received so far. */
  text(): string;
  /** Resolves when the server ends the stream (or the connection drops). */
  readonly ended: Promise<void>;
  /** Resolves once the received text matches. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<void>;
  close(): void;
}

export async function openEventStream(url: string, headers: Record<string, string>): Promise<OpenStream> {
  const abort = new AbortController();
  const response = await fetch(url, { headers: { accept: 'text/event-stream', ...headers }, signal: abort.signal });
  let received = '';
  const waiters = new Set<() => void>();
  const reader = response.body!.getReader();
  const decoder = new TextDecoder();
  const ended = (async () => {
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return;
        received += decoder.decode(value, { stream: true });
        for (const wake of waiters) wake();
      }
    } catch {
      return;
    }
  })();
  return {
    status: response.status,
    text: () => received,
    ended,
    waitFor: (pattern, timeoutMs = 10_000) =>
      new Promise<void>((resolve, reject) => {
        const check = () => {
          if (!pattern.test(received)) return;
          waiters.delete(check);
          clearTimeout(timer);
          resolve();
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`the stream did not show ${pattern} within ${timeoutMs} ms; got:\n${received}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      }),
    close: () => abort.abort(),
  };
}

/** Resolves with how long `promise` took, or rejects after `limitMs`. */
export async function within(promise: Promise<unknown>, limitMs: number, what: string): Promise<number> {
  const started = Date.now();
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await Promise.race([
      promise,
      new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} did not happen within ${limitMs} ms`)), limitMs))),
    ]);
  } finally {
    clearTimeout(timer);
  }
  return Date.now() - started;
}
