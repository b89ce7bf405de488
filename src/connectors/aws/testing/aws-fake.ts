import { createHash, createHmac, randomUUID, timingSafeEqual } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';

/**
 * A local stand-in for AWS service endpoints, for tests and benchmarks only. It is NOT AWS: it
 * speaks the two wire protocols the official SDK clients use and checks what AWS checks at the
 * door, so the connectors are exercised through the real SDK (serialisation, signing, retries,
 * error parsing) without a cloud:
 *
 * - **Signature Version 4**: every request must carry an `Authorization: AWS4-HMAC-SHA256` header
 *   for a known access key; the fake recomputes the signature over the signed headers and body
 *   with `@smithy/signature-v4` and refuses a mismatch (`SignatureDoesNotMatch`), an unknown key
 *   (`UnrecognizedClientException` / `InvalidClientTokenId`), a credential scope for another
 *   service or region, and a request time more than 5 minutes off (`RequestTimeTooSkewed`).
 * - **JSON 1.1** (`X-Amz-Target: <prefix>.<Operation>`, e.g. IAM Identity Center's
 *   `SWBExternalService`) with errors as `{ "__type": code, "message": … }`.
 * - **Query** (form-encoded `Action=…&Version=…`, as STS and IAM use) with XML results and
 *   `<ErrorResponse>` errors.
 *
 * Each service is registered with its operations; an operation gets the parsed input and the
 * caller (the access key's identity) and returns the output or throws an `AwsError`. What the
 * fake cannot prove: AWS's policy evaluation, eventual consistency beyond what a test injects,
 * quotas and the exact text of AWS's error messages.
 */

export class AwsError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status = 400,
    /** Query protocol only: who is at fault. */
    readonly fault: 'Sender' | 'Receiver' = status >= 500 ? 'Receiver' : 'Sender',
  ) {
    super(message);
  }
}

/** Who signed a request: the access key and the identity the test registered for it. */
export interface AwsCaller {
  readonly accessKeyId: string;
  readonly identity: string;
}

export interface AwsCall {
  readonly service: string;
  readonly operation: string;
  readonly input: unknown;
  readonly caller: AwsCaller;
}

export type JsonOperation = (input: Record<string, unknown>, caller: AwsCaller) => unknown;
/** A Query operation gets the flat form parameters (`Tags.member.1.Key`…) and returns the result element's contents. */
export type QueryOperation = (params: ReadonlyMap<string, string>, caller: AwsCaller) => XmlValue;
export type XmlValue = string | number | boolean | null | undefined | readonly XmlValue[] | { readonly [key: string]: XmlValue };

/** A failure a test injects before an operation runs (throttling, 5xx…); return undefined to let it run. */
export type Injector = (call: AwsCall) => AwsError | undefined;

interface Key {
  readonly secret: string;
  readonly sessionToken: string | undefined;
  readonly identity: string;
}

interface JsonService {
  readonly protocol: 'json';
  readonly targetPrefix: string;
  readonly operations: Readonly<Record<string, JsonOperation>>;
}

interface QueryService {
  readonly protocol: 'query';
  readonly version: string;
  readonly xmlns: string;
  readonly operations: Readonly<Record<string, QueryOperation>>;
}

const MAX_BODY = 1024 * 1024;
const MAX_SKEW_MS = 5 * 60_000;

export class AwsFake {
  readonly server: Server;
  /** Every request that passed authentication, in order (for assertions and counts). */
  readonly calls: AwsCall[] = [];
  private readonly keys = new Map<string, Key>();
  private readonly services = new Map<string, JsonService | QueryService>();
  private injectors: Injector[] = [];

  constructor(readonly region = 'us-east-1') {
    this.server = createServer((req, res) => void this.handle(req, res));
  }

  /** Accepts requests signed with this key; `identity` is what operations see as the caller. */
  addKey(accessKeyId: string, secretAccessKey: string, identity: string, sessionToken?: string): void {
    this.keys.set(accessKeyId, { secret: secretAccessKey, sessionToken, identity });
  }

  removeKey(accessKeyId: string): void {
    this.keys.delete(accessKeyId);
  }

  /** A JSON 1.1 service by its signing name (e.g. `sso`) and X-Amz-Target prefix (e.g. `SWBExternalService`). */
  json(signingName: string, targetPrefix: string, operations: Readonly<Record<string, JsonOperation>>): void {
    this.services.set(signingName, { protocol: 'json', targetPrefix, operations });
  }

  /** A Query service by its signing name (e.g. `sts`), API version and XML namespace. */
  query(signingName: string, version: string, xmlns: string, operations: Readonly<Record<string, QueryOperation>>): void {
    this.services.set(signingName, { protocol: 'query', version, xmlns, operations });
  }

  /** Adds a failure injector; returns a function that removes it. */
  inject(injector: Injector): () => void {
    this.injectors.push(injector);
    return () => (this.injectors = this.injectors.filter((i) => i !== injector));
  }

  async listen(): Promise<string> {
    this.server.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of req as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > MAX_BODY) return reply(res, 413, 'text/plain', 'request too large');
      chunks.push(chunk);
    }
    const body = Buffer.concat(chunks).toString('utf8');
    const target = header(req, 'x-amz-target');
    const isJson = target !== undefined;
    let service: string | undefined;
    try {
      const scope = await this.authenticate(req, body);
      service = scope.service;
      const registered = this.services.get(scope.service);
      if (!registered) throw new AwsError('UnknownService', `this fake serves no service "${scope.service}"`, 400);
      if (registered.protocol === 'json') {
        if (!isJson) throw new AwsError('SerializationException', 'expected an X-Amz-Target header (JSON 1.1 protocol)');
        const [prefix, operation] = target.split('.', 2) as [string, string | undefined];
        const run = operation === undefined || prefix !== registered.targetPrefix ? undefined : registered.operations[operation];
        if (!run) throw new AwsError('UnknownOperationException', `unknown operation ${target}`);
        let input: Record<string, unknown>;
        try {
          input = body === '' ? {} : (JSON.parse(body) as Record<string, unknown>);
        } catch {
          throw new AwsError('SerializationException', 'the body is not JSON');
        }
        const call = { service: scope.service, operation: operation!, input, caller: scope.caller };
        this.checkInjected(call);
        this.calls.push(call);
        const output = await run(input, scope.caller);
        return reply(res, 200, 'application/x-amz-json-1.1', JSON.stringify(output ?? {}));
      }
      const params = new URLSearchParams(body);
      const action = params.get('Action') ?? '';
      if (params.get('Version') !== registered.version) throw new AwsError('InvalidParameterValue', `Version must be ${registered.version}`);
      const run = registered.operations[action];
      if (!run) throw new AwsError('InvalidAction', `Could not find operation ${action} for version ${registered.version}`);
      const flat = new Map(params.entries());
      const call = { service: scope.service, operation: action, input: Object.fromEntries(flat), caller: scope.caller };
      this.checkInjected(call);
      this.calls.push(call);
      const result = await run(flat, scope.caller);
      const xml =
        `<${action}Response xmlns="${registered.xmlns}"><${action}Result>${toXml(result)}</${action}Result>` +
        `<ResponseMetadata><RequestId>${randomUUID()}</RequestId></ResponseMetadata></${action}Response>`;
      return reply(res, 200, 'text/xml', xml);
    } catch (caught) {
      const error = caught instanceof AwsError ? caught : new AwsError('InternalFailure', String(caught), 500);
      const query = !isJson && (service === undefined || this.services.get(service)?.protocol === 'query');
      if (query) {
        const xml =
          `<ErrorResponse><Error><Type>${error.fault}</Type><Code>${escapeXml(error.code)}</Code><Message>${escapeXml(error.message)}</Message></Error>` +
          `<RequestId>${randomUUID()}</RequestId></ErrorResponse>`;
        return reply(res, error.status, 'text/xml', xml);
      }
      res.setHeader('x-amzn-ErrorType', error.code);
      return reply(res, error.status, 'application/x-amz-json-1.1', JSON.stringify({ __type: error.code, message: error.message }));
    }
  }

  private checkInjected(call: AwsCall): void {
    for (const injector of this.injectors) {
      const error = injector(call);
      if (error) throw error;
    }
  }

  /** Checks the SigV4 signature as AWS does; returns the credential scope's service and the caller. */
  private async authenticate(req: IncomingMessage, body: string): Promise<{ service: string; caller: AwsCaller }> {
    const authorization = header(req, 'authorization') ?? '';
    const match =
      /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([a-z0-9;-]+), ?Signature=([0-9a-f]{64})$/.exec(
        authorization,
      );
    if (!match) throw new AwsError('MissingAuthenticationToken', 'Request is missing a valid SigV4 Authorization header', 403);
    const [, accessKeyId, day, region, service, signedHeaders, signature] = match as unknown as [string, string, string, string, string, string, string];
    const key = this.keys.get(accessKeyId);
    if (!key)
      throw new AwsError(
        service === 'sts' || service === 'iam' ? 'InvalidClientTokenId' : 'UnrecognizedClientException',
        'The security token included in the request is invalid.',
        403,
      );
    if (key.sessionToken !== undefined && header(req, 'x-amz-security-token') !== key.sessionToken) {
      throw new AwsError('InvalidClientTokenId', 'The security token included in the request is invalid.', 403);
    }
    // IAM is global: AWS signs it for us-east-1 whatever the client's region.
    const expectedRegion = service === 'iam' ? 'us-east-1' : this.region;
    if (region !== expectedRegion) throw new AwsError('SignatureDoesNotMatch', `Credential should be scoped to a valid region, not '${region}'.`, 403);
    const amzDate = header(req, 'x-amz-date') ?? '';
    const signedAt = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(amzDate);
    if (!signedAt || !amzDate.startsWith(day)) throw new AwsError('IncompleteSignature', 'X-Amz-Date is missing or does not match the credential scope', 403);
    const when = Date.UTC(+signedAt[1]!, +signedAt[2]! - 1, +signedAt[3]!, +signedAt[4]!, +signedAt[5]!, +signedAt[6]!);
    if (Math.abs(Date.now() - when) > MAX_SKEW_MS)
      throw new AwsError('RequestTimeTooSkewed', 'The difference between the request time and the current time is too large.', 403);

    const names = signedHeaders.split(';');
    if (!names.includes('host') || !names.includes('x-amz-date')) throw new AwsError('IncompleteSignature', 'host and x-amz-date must be signed', 403);
    const headers: Record<string, string> = {};
    for (const name of names) headers[name] = header(req, name) ?? '';
    const url = new URL(req.url ?? '/', 'http://fake');
    const request = new HttpRequest({
      method: req.method ?? 'GET',
      protocol: 'http:',
      hostname: url.hostname,
      path: url.pathname,
      query: Object.fromEntries(url.searchParams.entries()),
      headers,
      body,
    });
    const signer = new SignatureV4({
      credentials: { accessKeyId, secretAccessKey: key.secret, ...(key.sessionToken ? { sessionToken: key.sessionToken } : {}) },
      region,
      service,
      sha256: Sha256,
    });
    const signed = await signer.sign(request, { signingDate: new Date(when) });
    const expected = /Signature=([0-9a-f]{64})/.exec(String(signed.headers.authorization ?? signed.headers.Authorization))?.[1] ?? '';
    if (expected.length !== signature.length || !timingSafeEqual(Buffer.from(expected), Buffer.from(signature))) {
      throw new AwsError('SignatureDoesNotMatch', 'The request signature we calculated does not match the signature you provided.', 403);
    }
    return { service, caller: { accessKeyId, identity: key.identity } };
  }
}

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value.join(',') : value;
}

function reply(res: ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, { 'content-type': type, 'x-amzn-RequestId': randomUUID() });
  res.end(body);
}

export function escapeXml(text: string): string {
  return text.replace(/[<>&'"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' })[c]!);
}

/** Query-protocol XML: objects become elements, arrays become `<member>` lists, Dates ISO strings. */
export function toXml(value: XmlValue): string {
  if (value === null || value === undefined) return '';
  if (Array.isArray(value)) return value.map((item) => `<member>${toXml(item as XmlValue)}</member>`).join('');
  if (typeof value === 'object') {
    return Object.entries(value)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => `<${k}>${toXml(v)}</${k}>`)
      .join('');
  }
  return escapeXml(String(value));
}

type SourceData = string | ArrayBuffer | ArrayBufferView;

function bytes(data: SourceData): string | Uint8Array {
  if (typeof data === 'string') return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/** The hash the signer needs (SHA-256, or HMAC-SHA-256 when given a secret), from node:crypto. */
class Sha256 {
  private readonly hash;
  constructor(secret?: SourceData) {
    this.hash = secret === undefined ? createHash('sha256') : createHmac('sha256', bytes(secret));
  }
  update(data: SourceData): void {
    this.hash.update(bytes(data));
  }
  digest(): Promise<Uint8Array> {
    return Promise.resolve(new Uint8Array(this.hash.digest()));
  }
}
