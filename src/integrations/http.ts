import type { IntegrationEndpoint } from '../config/types.js';
import { send } from '../connectors/webhook/index.js';

/**
 * One HTTP call to a system Lapse asks for facts, through the connectors' transport (node:https
 * with the configured CA, bounded body, no way to skip verification), with the integration's own
 * timeout on top of the caller's deadline. Failures come back as `LookupFailure`s whose messages
 * never hold a credential: every secret of the integration is scrubbed from them.
 */
export class LookupFailure extends Error {
  override readonly name = 'LookupFailure';
}

export interface JsonCall {
  readonly method: 'GET' | 'POST';
  /** Path and query below the endpoint URL, already percent-encoded; absent: the URL itself. */
  readonly path?: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body?: string;
  /** Statuses answered with a body the caller reads (besides 2xx), e.g. 404 for "no such ticket". */
  readonly accept?: readonly number[];
  /** Values to scrub from any message (tokens, passwords). */
  readonly secrets: readonly string[];
}

export async function callJson(endpoint: IntegrationEndpoint, call: JsonCall, signal: AbortSignal): Promise<{ status: number; json: unknown }> {
  const attempt = AbortSignal.any([signal, AbortSignal.timeout(endpoint.timeoutMs)]);
  const scrub = (text: string) => call.secrets.reduce((out, secret) => (secret.length >= 4 ? out.split(secret).join('[redacted]') : out), text);
  const url = new URL(endpoint.url);
  let response;
  try {
    response = await send(
      { url, ca: endpoint.ca, insecureSkipVerify: false },
      {
        method: call.method,
        ...(call.path === undefined ? {} : { path: call.path }),
        headers: { accept: 'application/json', ...call.headers, ...(call.body === undefined ? {} : { 'content-type': 'application/json' }) },
        ...(call.body === undefined ? {} : { body: call.body }),
        signal: attempt,
      },
    );
  } catch (error) {
    const why = attempt.aborted ? `no answer within ${endpoint.timeoutMs} ms` : (error as Error).message;
    throw new LookupFailure(scrub(`${url.origin}: ${why}`));
  }
  const ok = (response.status >= 200 && response.status < 300) || call.accept?.includes(response.status) === true;
  if (!ok) throw new LookupFailure(scrub(`${url.origin} answered HTTP ${response.status}${excerpt(response.body)}`));
  try {
    return { status: response.status, json: response.body ? (JSON.parse(response.body) as unknown) : null };
  } catch {
    throw new LookupFailure(`${url.origin} answered HTTP ${response.status} with a body that is not JSON`);
  }
}

/** A short, printable piece of an error answer for the message. */
function excerpt(body: string): string {
  const clean = body
    .replace(/[^\x20-\x7e]/g, ' ')
    .trim()
    .slice(0, 200);
  return clean ? `: ${clean}` : '';
}

/** The first issues of a response that does not have the documented shape, for the message. */
export function shapeProblem(what: string, issues: readonly { path: PropertyKey[]; message: string }[]): LookupFailure {
  const list = issues.slice(0, 3).map((i) => `${i.path.map(String).join('.') || '(body)'}: ${i.message}`);
  return new LookupFailure(`${what} does not have the expected shape (${list.join('; ')})`);
}
