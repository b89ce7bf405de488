import { LapseError } from '../../domain/errors.js';

/**
 * Runs `work` but rejects as soon as `signal` aborts, calling `onAbort` so the caller can tear
 * down whatever the work holds (destroy the socket: the drivers take no AbortSignal themselves).
 */
export async function withinDeadline<T>(signal: AbortSignal, what: string, work: () => Promise<T>, onAbort: () => void = () => {}): Promise<T> {
  if (signal.aborted) throw deadlineError(what, signal);
  let stop: (() => void) | undefined;
  const aborted = new Promise<never>((_, reject) => {
    stop = () => {
      onAbort();
      reject(deadlineError(what, signal));
    };
    signal.addEventListener('abort', stop, { once: true });
  });
  try {
    return await Promise.race([work(), aborted]);
  } finally {
    if (stop) signal.removeEventListener('abort', stop);
  }
}

function deadlineError(what: string, signal: AbortSignal): LapseError {
  const reason = signal.reason instanceof Error ? signal.reason.message : 'aborted';
  return new LapseError('connector_timeout', `${what} did not finish before its deadline (${reason})`, {
    hint: 'check that the target is reachable and not overloaded, or raise scheduler.connectorTimeout',
  });
}
