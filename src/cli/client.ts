import { randomUUID } from 'node:crypto';
import type { z } from 'zod';
import { ERROR_CODES, LapseError, type ErrorCode } from '../domain/errors.js';
import type { paths } from '../api/openapi-types.js';
import { loadCredentials, normalizeServerUrl } from './credentials.js';

/**
 * The `lapse` client's HTTP side: one small typed wrapper over `fetch` for the REST API
 * (docs/api.md). Every answer is checked against a schema; every problem document becomes a
 * LapseError with the server's code, detail and hint, so the CLI's exit code is the registry's.
 *
 * Paths, path parameters, queries and bodies are typed by src/api/openapi-types.d.ts, generated from the
 * server's OpenAPI document like the portal's types (`npm run web:api-types`), and each answer
 * schema must accept what the document says the server answers: a route change the CLI did not
 * follow fails to compile. NB. The types only: the runtime stays this small fetch wrapper, so
 * client commands load no server code and no extra package.
 *
 * NB. There is deliberately no way to turn TLS certificate checks off. A private CA is trusted the
 * Node way (NODE_EXTRA_CA_CERTS), and NODE_TLS_REJECT_UNAUTHORIZED=0 is refused, not obeyed.
 */

/** How long one HTTP exchange may take before the client gives up (the SSE stream excepted). */
export const DEFAULT_HTTP_TIMEOUT_MS = 30_000;
/** Larger answers are refused: nothing the API returns (a page is at most 200 items) comes near it. */
const MAX_RESPONSE_BYTES = 16 * 1024 * 1024;
const MFA_HEADER = 'X-Lapse-MFA';

export interface Connection {
  /** Base URL without a trailing slash, e.g. https://lapse.example.com */
  readonly server: string;
  readonly token: string;
}

export interface ConnectionOptions {
  readonly server?: string;
  readonly token?: string;
}

/**
 * Where to send requests and as whom: `--server`/`--token` first, then LAPSE_SERVER/LAPSE_TOKEN,
 * then the saved sign-in (`lapse login`; see credentials.ts). Fails before any network call.
 */
export function resolveConnection(options: ConnectionOptions, env: NodeJS.ProcessEnv = process.env): Connection {
  const server = options.server !== undefined ? normalizeServerUrl(options.server, '--server') : undefined;
  if (options.token !== undefined) {
    checkTokenShape(options.token, '--token');
    const base = server ?? (env.LAPSE_SERVER ? normalizeServerUrl(env.LAPSE_SERVER, 'LAPSE_SERVER') : loadCredentials(undefined, env)?.server);
    if (!base)
      throw new LapseError('validation_failed', '--token needs a server to send it to', {
        where: '--server',
        hint: 'Add --server https://lapse.example.com (or set LAPSE_SERVER).',
      });
    return { server: base, token: options.token };
  }
  const saved = loadCredentials(server, env);
  if (!saved) {
    throw new LapseError('unauthenticated', server ? `you are not signed in to ${server}` : 'you are not signed in', {
      hint: 'Run `lapse login` first, or pass --token (or set LAPSE_SERVER and LAPSE_TOKEN).',
    });
  }
  checkTokenShape(saved.token, env.LAPSE_TOKEN ? 'LAPSE_TOKEN' : 'the credentials file');
  return { server: saved.server, token: saved.token };
}

function checkTokenShape(token: string, where: string): void {
  if (token.length === 0 || token.length > 512 || !/^[\x21-\x7e]+$/.test(token)) {
    throw new LapseError('validation_failed', 'the API token is empty, too long or has spaces or control characters', {
      where,
      hint: 'Paste the token exactly as `lapse admin token create` printed it.',
    });
  }
}

/** Answers the server's call for a second factor: a TOTP code, or undefined to give up. */
export type StepUpPrompt = () => Promise<string | undefined>;

export interface ClientOptions {
  readonly timeoutMs?: number;
  readonly stepUp?: StepUpPrompt;
  /** For tests; the global fetch otherwise. */
  readonly fetch?: typeof fetch;
  readonly env?: NodeJS.ProcessEnv;
}

type Method = 'get' | 'post' | 'delete';
/** The documented paths (templates such as `/api/v1/requests/{id}`) that answer `M`. */
export type ApiPath<M extends Method> = { [P in keyof paths]: paths[P][M] extends undefined ? never : P }[keyof paths];
type Operation<P extends keyof paths, M extends Method> = NonNullable<paths[P][M]>;
/** `{id}` in `/api/v1/requests/{id}` -> 'id'. */
type PathParamNames<P extends string> = P extends `${string}{${infer Name}}${infer Rest}` ? Name | PathParamNames<Rest> : never;
type QueryOf<P extends keyof paths, M extends Method> = Operation<P, M> extends { parameters: { query?: infer Q } } ? Q : never;
type BodyOf<P extends keyof paths, M extends Method> =
  Operation<P, M> extends { requestBody: { content: { 'application/json': infer B } } }
    ? B
    : Operation<P, M> extends { requestBody?: { content: { 'application/json': infer B } } }
      ? B | undefined
      : never;
/** What the server documents as its 200 answer. */
export type ApiAnswer<P extends keyof paths, M extends Method> =
  Operation<P, M> extends { responses: { 200: { content: { 'application/json': infer A } } } } ? A : never;
/** The schema itself when it accepts the documented answer; otherwise a type naming the mismatch. */
type Accepting<S extends z.ZodType, A> = [A] extends [z.input<S>] ? S : { readonly 'the answer schema does not accept what the server documents': A };

type BaseOptions<P extends keyof paths, M extends Method> = {
  readonly query?: QueryOf<P, M>;
  readonly body?: BodyOf<P, M>;
  /** POST only: false for calls that must never be replayed (fetching credentials). */
  readonly idempotent?: boolean;
};
/** The call's options; with the values of the path's `{parameters}` when it has any. */
export type CallOptions<P extends keyof paths, M extends Method> = [PathParamNames<P>] extends [never]
  ? [options?: BaseOptions<P, M>]
  : [options: BaseOptions<P, M> & { readonly path: Readonly<Record<PathParamNames<P>, string>> }];

/** What the transport needs of any call, once its types are checked. */
interface SendOptions {
  readonly path?: Readonly<Record<string, string>>;
  readonly query?: unknown;
  readonly body?: unknown;
  readonly idempotent?: boolean;
}

export class LapseClient {
  readonly server: string;
  private readonly token: string;
  private readonly timeoutMs: number;
  private readonly stepUp: StepUpPrompt | undefined;
  private readonly fetchImpl: typeof fetch;

  constructor(connection: Connection, options: ClientOptions = {}) {
    refuseDisabledTlsChecks(options.env ?? process.env);
    this.server = connection.server;
    this.token = connection.token;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_HTTP_TIMEOUT_MS;
    this.stepUp = options.stepUp;
    this.fetchImpl = options.fetch ?? fetch;
  }

  async get<P extends ApiPath<'get'>, S extends z.ZodType>(
    template: P,
    schema: Accepting<S, ApiAnswer<P, 'get'>>,
    ...[options = {}]: CallOptions<P, 'get'>
  ): Promise<z.infer<S>> {
    const path = fill(template, options);
    const response = await this.send('GET', path, options, {});
    return parseAnswer(schema as S, await readJson(response, path), path);
  }

  /**
   * A mutating call. One Idempotency-Key per call, reused when the call is repeated with a second
   * factor, so the server treats the repeat as the same request and never acts twice.
   */
  async post<P extends ApiPath<'post'>, S extends z.ZodType>(
    template: P,
    schema: Accepting<S, ApiAnswer<P, 'post'>>,
    ...[options = {}]: CallOptions<P, 'post'>
  ): Promise<z.infer<S>> {
    const path = fill(template, options);
    const key: Record<string, string> = options.idempotent === false ? {} : { 'idempotency-key': randomUUID() };
    let response: Response;
    try {
      response = await this.send('POST', path, options, key);
    } catch (error) {
      if (!(error instanceof LapseError) || error.code !== 'mfa_step_up_required') throw error;
      const code = await this.askForCode(error);
      if (code === undefined) throw withCliStepUpHint(error);
      response = await this.send('POST', path, options, { ...key, [MFA_HEADER]: `totp ${code}` });
    }
    return parseAnswer(schema as S, await readJson(response, path), path);
  }

  /** A DELETE: the answer (204) carries no body. */
  async delete<P extends ApiPath<'delete'>>(template: P, ...[options = {}]: CallOptions<P, 'delete'>): Promise<void> {
    const path = fill(template, options);
    const response = await this.send('DELETE', path, options, {});
    await response.body?.cancel();
  }

  /** A GET whose body is passed on as it arrives (audit export). */
  async stream<P extends ApiPath<'get'>>(template: P, ...[options = {}]: CallOptions<P, 'get'>): Promise<ReadableStream<Uint8Array>> {
    const path = fill(template, options);
    // Its own (never aborted) signal: only the start is timed, a long export may take minutes.
    const response = await this.send('GET', path, options, {}, new AbortController().signal);
    if (!response.body) throw new LapseError('internal', `the server sent no body for ${path}`);
    return response.body;
  }

  /**
   * Opens a Server-Sent Events stream and calls `onEvent` for each event until `signal` aborts or
   * the stream ends. Resolves when it ends; rejects when it cannot be opened.
   */
  async events<P extends ApiPath<'get'>>(
    path: P,
    query: QueryOf<P, 'get'>,
    signal: AbortSignal,
    onEvent: (event: ServerEvent) => void,
    onOpen: () => void = () => {},
  ): Promise<void> {
    const response = await this.send('GET', path, { query }, { accept: 'text/event-stream' }, signal);
    if (!response.body || !(response.headers.get('content-type') ?? '').startsWith('text/event-stream')) {
      await response.body?.cancel();
      throw new LapseError('internal', `${path} is not an event stream`);
    }
    onOpen();
    const parser = new EventStreamParser(onEvent);
    const decoder = new TextDecoder();
    try {
      for await (const chunk of response.body) parser.push(decoder.decode(chunk, { stream: true }));
    } catch (error) {
      if (!signal.aborted) throw error;
    }
  }

  private async askForCode(error: LapseError): Promise<string | undefined> {
    const guidance = error.details.stepUp as { factors?: unknown } | undefined;
    const factors = Array.isArray(guidance?.factors) ? guidance.factors : undefined;
    // With no authenticator app enrolled there is nothing to type; the server's hint says what to do.
    if (factors && !factors.includes('totp')) return undefined;
    return this.stepUp ? this.stepUp() : undefined;
  }

  private async send(
    method: 'GET' | 'POST' | 'DELETE',
    path: string,
    options: SendOptions,
    headers: Record<string, string>,
    signal?: AbortSignal,
  ): Promise<Response> {
    const url = this.url(path, options.query);
    // NB. A stream (signal given) may stay open for long, but must still start within the timeout.
    const timeout = new AbortController();
    const timer = setTimeout(() => timeout.abort(), this.timeoutMs);
    if (!signal) timer.unref?.();
    let response: Response;
    try {
      response = await this.fetchImpl(url, {
        method,
        redirect: 'error', // a redirect could carry the token to another host
        headers: {
          authorization: `Bearer ${this.token}`,
          accept: 'application/json',
          'user-agent': 'lapse-cli',
          ...(options.body !== undefined ? { 'content-type': 'application/json' } : {}),
          ...headers,
        },
        ...(options.body !== undefined ? { body: JSON.stringify(options.body) } : {}),
        signal: signal ? AbortSignal.any([signal, timeout.signal]) : timeout.signal,
      });
    } catch (error) {
      clearTimeout(timer);
      throw unreachable(this.server, error, timeout.signal.aborted ? this.timeoutMs : undefined);
    }
    if (signal) clearTimeout(timer);
    if (response.ok) return response;
    throw await problemFrom(response, path);
  }

  private url(path: string, query: SendOptions['query']): string {
    const url = new URL(`${this.server}${path}`);
    for (const [key, value] of Object.entries((query ?? {}) as Record<string, unknown>)) {
      if (value !== undefined) url.searchParams.set(key, String(value));
    }
    return url.toString();
  }
}

/** `/api/v1/requests/{id}` with options.path `{ id: 'req_1' }` -> `/api/v1/requests/req_1`. */
function fill(template: string, options: SendOptions): string {
  return template.replace(/\{([^}]+)\}/g, (_, name: string) => {
    const value = options.path?.[name];
    if (value === undefined) throw new LapseError('internal', `no value for {${name}} in ${template}`);
    return encodeURIComponent(value);
  });
}

/** One Server-Sent Event: its `event:` name and parsed `data:` JSON (undefined when not JSON). */
export interface ServerEvent {
  readonly event: string;
  readonly data: unknown;
}

/** The text/event-stream format (WHATWG HTML §9.2), enough of it for Lapse's events. */
export class EventStreamParser {
  private buffer = '';
  private event = '';
  private data: string[] = [];

  constructor(private readonly onEvent: (event: ServerEvent) => void) {}

  push(text: string): void {
    this.buffer += text;
    // A line longer than any event Lapse sends is a broken or hostile stream.
    if (this.buffer.length > 1024 * 1024) throw new LapseError('internal', 'the event stream sent a line over 1 MiB');
    const lines = this.buffer.split(/\r\n|\r|\n/);
    this.buffer = lines.pop() ?? '';
    for (const line of lines) this.line(line);
  }

  private line(line: string): void {
    if (line === '') {
      if (this.data.length > 0) {
        const text = this.data.join('\n');
        let data: unknown;
        try {
          data = JSON.parse(text);
        } catch {
          data = undefined;
        }
        this.onEvent({ event: this.event || 'message', data });
      }
      this.event = '';
      this.data = [];
      return;
    }
    if (line.startsWith(':')) return; // a comment: keepalive
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    const value = colon === -1 ? '' : line.slice(colon + 1).replace(/^ /, '');
    if (field === 'event') this.event = value;
    else if (field === 'data') this.data.push(value);
  }
}

/** The server's hint speaks HTTP; say how to do it with lapse too. */
function withCliStepUpHint(error: LapseError): LapseError {
  const guidance = error.details.stepUp as { factors?: unknown } | undefined;
  if (Array.isArray(guidance?.factors) && !guidance.factors.includes('totp')) return error;
  const hint = `${error.details.hint ?? ''} With lapse: run the command on a terminal to be asked for the code, or pass --mfa-code <code>.`.trim();
  return new LapseError(error.code, error.message, { ...error.details, hint }, { cause: error });
}

function refuseDisabledTlsChecks(env: NodeJS.ProcessEnv): void {
  if (env.NODE_TLS_REJECT_UNAUTHORIZED === '0') {
    throw new LapseError('validation_failed', 'NODE_TLS_REJECT_UNAUTHORIZED=0 turns off TLS certificate checks, and lapse will not send your token that way', {
      where: 'NODE_TLS_REJECT_UNAUTHORIZED',
      hint: 'Unset it; to trust a private CA, point NODE_EXTRA_CA_CERTS at its PEM file.',
    });
  }
}

const TLS_ERRORS = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER|ERR_TLS|HOSTNAME|ALTNAME/;

/** A network failure, said plainly; the token never appears (it is only in a header). */
function unreachable(server: string, error: unknown, timedOutAfterMs: number | undefined): LapseError {
  if (timedOutAfterMs !== undefined) {
    return new LapseError('server_unreachable', `the Lapse server at ${server} did not answer within ${timedOutAfterMs / 1000} s`, {
      where: server,
      hint: 'Check the server is up (GET /readyz) and try again.',
    });
  }
  const cause = (error as { cause?: { code?: unknown; message?: unknown } } | undefined)?.cause;
  const code = typeof cause?.code === 'string' ? cause.code : '';
  if (TLS_ERRORS.test(code)) {
    return new LapseError('server_unreachable', `the TLS certificate of ${server} is not trusted (${code})`, {
      where: server,
      hint: 'lapse always verifies certificates. If the server uses a private CA, set NODE_EXTRA_CA_CERTS=/path/to/ca.pem; check the name in the certificate matches the URL.',
    });
  }
  const reason = code || (typeof cause?.message === 'string' ? cause.message : error instanceof Error ? error.message : String(error));
  if (/redirect/i.test(reason)) {
    return new LapseError('server_unreachable', `${server} answered with a redirect, which lapse does not follow (it could carry your token to another host)`, {
      where: server,
      hint: 'Use the address it redirects to as the server, e.g. https:// instead of http://.',
    });
  }
  return new LapseError('server_unreachable', `could not reach the Lapse server at ${server} (${reason.slice(0, 200)})`, {
    where: server,
    hint: 'Check the address (--server, LAPSE_SERVER or `lapse login`) and that the server is running.',
  });
}

/** The HTTP status's meaning when the server did not send a known code (a proxy's error page, say). */
function codeForStatus(status: number): ErrorCode {
  if (status === 400 || status === 422) return 'validation_failed';
  if (status === 401) return 'unauthenticated';
  if (status === 403) return 'forbidden';
  if (status === 404) return 'not_found';
  if (status === 409) return 'conflict';
  if (status === 410) return 'gone';
  if (status === 429) return 'rate_limited';
  if (status === 502 || status === 503 || status === 504) return 'server_unreachable';
  return 'internal';
}

function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.hasOwn(ERROR_CODES, value);
}

const text = (value: unknown, max: number): string | undefined => (typeof value === 'string' && value.length > 0 ? value.slice(0, max) : undefined);

async function problemFrom(response: Response, path: string): Promise<LapseError> {
  let body: Record<string, unknown> = {};
  try {
    const parsed: unknown = JSON.parse(await readText(response, path));
    if (parsed && typeof parsed === 'object') body = parsed as Record<string, unknown>;
  } catch {
    // Not a problem document (a proxy's HTML page, say): the status alone has to do.
  }
  const code = isErrorCode(body.code) ? body.code : codeForStatus(response.status);
  const detail = text(body.detail, 4000) ?? `the server answered HTTP ${response.status} to ${path}`;
  const where = text(body.where, 2000);
  const hint = text(body.hint, 2000);
  const problems = Array.isArray(body.problems) ? body.problems.slice(0, 100).map((p) => String(p).slice(0, 2000)) : undefined;
  return new LapseError(code, detail, {
    ...(where ? { where } : {}),
    ...(hint ? { hint } : {}),
    ...(problems ? { problems } : {}),
    ...(body.stepUp && typeof body.stepUp === 'object' ? { stepUp: body.stepUp } : {}),
    status: response.status,
  });
}

async function readText(response: Response, path: string): Promise<string> {
  const declared = Number(response.headers.get('content-length') ?? 0);
  if (declared > MAX_RESPONSE_BYTES) {
    await response.body?.cancel();
    throw new LapseError('internal', `the answer to ${path} is larger than ${MAX_RESPONSE_BYTES} bytes`);
  }
  if (!response.body) return '';
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    for await (const chunk of response.body) {
      size += chunk.byteLength;
      if (size > MAX_RESPONSE_BYTES) throw new LapseError('internal', `the answer to ${path} is larger than ${MAX_RESPONSE_BYTES} bytes`);
      chunks.push(chunk);
    }
  } catch (error) {
    if (error instanceof LapseError) throw error;
    throw new LapseError('server_unreachable', `the answer to ${path} was cut off (${error instanceof Error ? error.message : String(error)})`, {
      hint: 'Try again; if it persists, check the server and any proxy in between.',
    });
  }
  return Buffer.concat(chunks).toString('utf8');
}

async function readJson(response: Response, path: string): Promise<unknown> {
  const body = await readText(response, path);
  try {
    return JSON.parse(body);
  } catch {
    throw new LapseError('internal', `the answer to ${path} is not JSON`, { hint: 'Is --server pointing at a Lapse server?' });
  }
}

function parseAnswer<S extends z.ZodType>(schema: S, value: unknown, path: string): z.infer<S> {
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new LapseError(
      'internal',
      `the answer to ${path} is not what this lapse version expects (${issue?.path.join('.') || 'body'}: ${issue?.message ?? 'invalid'})`,
      {
        hint: 'The server and the CLI may be of different versions; compare `lapse --version` with the server.',
      },
    );
  }
  return parsed.data;
}
