import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';

/**
 * One JSON POST from a notification channel (Teams, event webhooks). https verifies the server
 * (system roots, plus `ca` when given); there is no switch to turn that off. Plain http is sent
 * only when the caller was explicitly allowed it (checked where the URL is accepted).
 * NB. node:https rather than fetch: Node 20's fetch takes no CA bundle without the undici package.
 */
export interface PostAnswer {
  readonly status: number;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  /** The first 4 KiB of the body (for error messages; never more is read). */
  readonly body: string;
}

const MAX_BODY = 4096;

export function postJson(
  url: URL,
  body: string,
  options: { headers?: Readonly<Record<string, string>>; ca?: string | undefined; signal: AbortSignal },
): Promise<PostAnswer> {
  const headers = { 'user-agent': 'lapse', 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)), ...options.headers };
  return new Promise<PostAnswer>((resolve, reject) => {
    const onResponse = (response: IncomingMessage) => {
      const chunks: Buffer[] = [];
      let size = 0;
      response.on('data', (chunk: Buffer) => {
        if (size < MAX_BODY) chunks.push(chunk);
        size += chunk.length;
      });
      let ended = false;
      response.on('error', reject);
      response.on('end', () => {
        ended = true;
        resolve({ status: response.statusCode ?? 0, headers: response.headers, body: Buffer.concat(chunks).toString('utf8').slice(0, MAX_BODY) });
      });
      response.on('close', () => {
        if (!ended) reject(options.signal.aborted ? options.signal.reason : new Error('connection closed before the answer was complete'));
      });
    };
    const common = { method: 'POST', headers, signal: options.signal };
    const req =
      url.protocol === 'https:'
        ? httpsRequest(url, { ...common, ...(options.ca ? { ca: options.ca } : {}), minVersion: 'TLSv1.2' }, onResponse)
        : httpRequest(url, common, onResponse);
    req.on('error', reject);
    req.end(body);
  });
}

/** Retry-After (seconds or an HTTP date) in milliseconds, capped at an hour; undefined when absent or unreadable. */
export function retryAfterMs(value: string | string[] | undefined, now: number = Date.now()): number | undefined {
  const text = Array.isArray(value) ? value[0] : value;
  if (!text) return undefined;
  const seconds = /^\d{1,7}$/.test(text.trim()) ? Number(text.trim()) * 1000 : Date.parse(text) - now;
  return Number.isFinite(seconds) ? Math.min(Math.max(0, seconds), 3_600_000) : undefined;
}
