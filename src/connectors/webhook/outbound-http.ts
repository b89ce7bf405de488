import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';

/**
 * HTTP calls from connectors to systems they manage (a webhook receiver, RabbitMQ's management
 * API), with Lapse's transport rules: https verifies the server (system roots, or `tls.ca`), and
 * `tls.insecureSkipVerify: true` is the only way off; plain http is for loopback only unless
 * `allowInsecureHttp: true` says otherwise. Both opt-outs warn.
 *
 * NB. node:https rather than fetch: Node 20's fetch cannot take a CA bundle without the undici
 * package, and a private CA is the common case for internal systems.
 */
export interface Endpoint {
  readonly url: URL;
  readonly ca: string | undefined;
  readonly insecureSkipVerify: boolean;
}

export interface HttpResponse {
  readonly status: number;
  readonly body: string;
}

const MAX_URL = 2048;
const MAX_CA_BYTES = 64 * 1024;
const MAX_RESPONSE_BYTES = 4 * 1024 * 1024;

/** Problems with `url`, `allowInsecureHttp` and `tls` of a target, as "<where>.<key>: …" strings. */
export function endpointProblems(settings: Readonly<Record<string, unknown>>, where: string, example: string): string[] {
  const { url, allowInsecureHttp, tls } = settings;
  const problems: string[] = [];
  if (allowInsecureHttp !== undefined && typeof allowInsecureHttp !== 'boolean') problems.push(`${where}.allowInsecureHttp: must be true or false`);
  if (tls !== undefined) {
    if (typeof tls !== 'object' || tls === null || Array.isArray(tls)) problems.push(`${where}.tls: must be a map with ca and insecureSkipVerify`);
    else {
      const { ca, insecureSkipVerify, ...unknown } = tls as Record<string, unknown>;
      for (const key of Object.keys(unknown))
        problems.push(`${where}.tls.${key}: unknown setting; use ca or insecureSkipVerify (https in the url turns TLS on)`);
      if (insecureSkipVerify !== undefined && typeof insecureSkipVerify !== 'boolean') problems.push(`${where}.tls.insecureSkipVerify: must be true or false`);
      if (ca !== undefined && (typeof ca !== 'string' || !ca.includes('-----BEGIN CERTIFICATE-----') || ca.length > MAX_CA_BYTES)) {
        problems.push(`${where}.tls.ca: must be a PEM certificate bundle (up to 64 KiB); write \${file:/path/to/ca.pem}`);
      }
    }
  }
  if (typeof url !== 'string' || url.length > MAX_URL || !URL.canParse(url)) {
    problems.push(`${where}.url: must be an http(s) URL of up to ${MAX_URL} characters, e.g. ${example}`);
    return problems;
  }
  const parsed = new URL(url);
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') problems.push(`${where}.url: must start with https:// (or http:// for loopback)`);
  if (parsed.username || parsed.password) problems.push(`${where}.url: must not carry credentials; put them in their own settings as secret references`);
  if (parsed.protocol === 'http:' && !isLoopback(parsed.hostname) && allowInsecureHttp !== true) {
    problems.push(
      `${where}.url: plain http to ${parsed.hostname} would send requests and credentials unencrypted; use https, or set allowInsecureHttp: true if the network is trusted`,
    );
  }
  if (parsed.protocol === 'http:' && tls !== undefined) problems.push(`${where}.tls: only applies to https URLs`);
  return problems;
}

/** The endpoint of settings that passed `endpointProblems`; warns once per target for each opt-out. */
export function endpoint(settings: Readonly<Record<string, unknown>>, target: string, warn: (message: string) => void = defaultWarn): Endpoint {
  const url = new URL(settings.url as string);
  const tls = (settings.tls ?? {}) as { ca?: string; insecureSkipVerify?: boolean };
  const insecureSkipVerify = url.protocol === 'https:' && tls.insecureSkipVerify === true;
  if (insecureSkipVerify)
    warnOnce(
      `${target}:tls`,
      warn,
      `WARNING: target ${target} calls ${url.origin} with tls.insecureSkipVerify: true; the server certificate is NOT verified and anyone on the path can impersonate it`,
    );
  if (url.protocol === 'http:' && !isLoopback(url.hostname))
    warnOnce(
      `${target}:http`,
      warn,
      `WARNING: target ${target} calls ${url.origin} over plain http (allowInsecureHttp: true); requests can be read and changed on the way`,
    );
  return { url, ca: tls.ca, insecureSkipVerify };
}

export interface HttpCall {
  readonly method: 'GET' | 'PUT' | 'POST' | 'DELETE';
  /** Path and query relative to the endpoint URL's path, already percent-encoded. */
  readonly path?: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: string;
  readonly signal: AbortSignal;
}

/** One request; rejects on network errors and when `signal` aborts. The body is read up to 4 MiB. */
export function send(to: Endpoint, call: HttpCall): Promise<HttpResponse> {
  const url = call.path === undefined ? to.url : new URL(to.url.pathname.replace(/\/$/, '') + call.path, to.url);
  const headers: Record<string, string> = { 'user-agent': 'lapse', ...call.headers };
  if (call.body !== undefined) headers['content-length'] = String(Buffer.byteLength(call.body));
  const options = { method: call.method, headers, signal: call.signal };
  return new Promise<HttpResponse>((resolve, reject) => {
    const onResponse = (response: IncomingMessage) => {
      const chunks: Buffer[] = [];
      let size = 0;
      response.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_RESPONSE_BYTES) {
          response.destroy(new Error(`response larger than ${MAX_RESPONSE_BYTES} bytes`));
          return;
        }
        chunks.push(chunk);
      });
      let ended = false;
      response.on('error', reject);
      response.on('end', () => {
        ended = true;
        resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') });
      });
      // An abort or a dropped connection mid-body does not always surface as 'error'.
      response.on('close', () => {
        if (!ended) reject(call.signal.aborted ? call.signal.reason : new Error('connection closed before the answer was complete'));
      });
    };
    const req =
      url.protocol === 'https:'
        ? httpsRequest(url, { ...options, ca: to.ca, rejectUnauthorized: !to.insecureSkipVerify }, onResponse)
        : httpRequest(url, options, onResponse);
    req.on('error', reject);
    req.end(call.body);
  });
}

export function isLoopback(hostname: string): boolean {
  return hostname === 'localhost' || hostname === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(hostname);
}

const warned = new Set<string>();

function warnOnce(key: string, warn: (message: string) => void, message: string): void {
  if (warned.has(key)) return;
  warned.add(key);
  warn(message);
}

function defaultWarn(message: string): void {
  // eslint-disable-next-line no-console -- connectors get no logger from builtInConnectors(); an insecure transport must still be loud.
  console.warn(message);
}
