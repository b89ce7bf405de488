import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TargetConfig } from '../../../config/types.js';
import type { TokenSource } from '../credentials.js';
import type { Binding, Policy } from '../iam-policy.js';
import { asVersion1, checkPolicy, heldPermissions, InvalidArgument } from './fake-iam-rules.js';

/**
 * A fake Google Cloud Resource Manager v3 for the gcp-iam connector's tests, bench and kill -9
 * test: an HTTP server on loopback speaking the REST wire protocol the `@googleapis/cloudresourcemanager`
 * client speaks — `POST /v3/{projects|folders|organizations}/<id>:getIamPolicy`, `:setIamPolicy`,
 * `:testIamPermissions` — plus a token endpoint (`POST /token`, client credentials) standing in
 * for Google's OAuth server.
 *
 * It checks and refuses what GCP does: a missing, unknown or expired bearer token (401
 * UNAUTHENTICATED); a caller whose bindings on the resource do not grant the permission, or a
 * resource that does not exist (403 PERMISSION_DENIED with an ErrorInfo naming the permission);
 * a setIamPolicy with a stale etag (409 ABORTED "There were concurrent policy changes", or 412
 * FAILED_PRECONDITION when told to); and, through fake-iam-rules.ts, conditions without version 3,
 * conditions on basic roles, unknown roles, bad member formats, malformed simple conditions and
 * more than 1,500 principals (400 INVALID_ARGUMENT). A version-1 read of a policy with conditions
 * hides them as `_withcond_` roles, as IAM does.
 *
 * Injectable failures: concurrent writers (the next n writes find the etag moved), stale reads
 * (the n reads after each write return the policy from before it), and 429 RESOURCE_EXHAUSTED /
 * 503 UNAVAILABLE for the next n requests or every nth. `calls` logs every request with the
 * condition titles each write added and removed.
 *
 * It cannot prove: real IAM evaluation and enforcement (permissions come from a small role
 * catalogue, no inheritance, no deny policies), the ~2-7 minute propagation of a written policy to
 * enforcement (its testIamPermissions answers from the current policy at once), Google's real
 * quotas, or the JWT exchange google-auth-library does with a service-account key.
 */
export interface FakeCall {
  readonly at: number;
  readonly method: 'getIamPolicy' | 'setIamPolicy' | 'testIamPermissions' | 'token';
  readonly resource: string;
  /** The member the bearer token belongs to; 'someone-else' for an injected concurrent writer. */
  readonly caller: string | null;
  readonly status: number;
  /** setIamPolicy: whether the request carried an etag (an etag-less write can drop conditions). */
  readonly etagSent?: boolean;
  /** setIamPolicy that succeeded: condition titles that appeared and disappeared. */
  readonly added?: readonly string[];
  readonly removed?: readonly string[];
}

export interface FakeInjections {
  /** Reads after each successful write that still return the policy from before it. */
  staleReadsAfterWrite: number;
  /** The next n setIamPolicy calls find that someone else wrote first (their etag is stale). */
  concurrentWrites: number;
  /** Every nth setIamPolicy call finds that someone else wrote first (0: never). */
  concurrentWriteEvery: number;
  conflictStatus: 409 | 412;
  /** Statuses (429, 503) the next API requests fail with, one each. */
  failNext: number[];
  /** Every nth API request fails with this status. */
  failEvery: { status: 429 | 503; nth: number } | null;
  /** API answers wait this long before their headers, and as long again before the second half of their body (a slow link). */
  stallMs: number;
}

interface Stored {
  policy: Policy;
  previous: Policy;
  staleLeft: number;
  version: number;
}

const GOOGLE_STATUS: Record<number, string> = {
  400: 'INVALID_ARGUMENT',
  401: 'UNAUTHENTICATED',
  403: 'PERMISSION_DENIED',
  404: 'NOT_FOUND',
  409: 'ABORTED',
  412: 'FAILED_PRECONDITION',
  429: 'RESOURCE_EXHAUSTED',
  503: 'UNAVAILABLE',
};
const MAX_BODY = 4 * 1024 * 1024;
const ROUTE = /^\/v3\/(projects|folders|organizations)\/([^/:]{1,64}):(getIamPolicy|setIamPolicy|testIamPermissions)$/;

class Refusal extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly details: unknown[] = [],
  ) {
    super(message);
  }
}

export class FakeResourceManager {
  readonly calls: FakeCall[] = [];
  readonly injected: FakeInjections = {
    staleReadsAfterWrite: 0,
    concurrentWrites: 0,
    concurrentWriteEvery: 0,
    conflictStatus: 409,
    failNext: [],
    failEvery: null,
    stallMs: 0,
  };
  /** Failures the fake sent: what a client had to absorb. */
  readonly sent = { throttled: 0, unavailable: 0, conflicts: 0, staleReads: 0 };
  tokenTtlMs = 3_600_000;
  private readonly resources = new Map<string, Stored>();
  private readonly identities = new Map<string, { member: string; secret: string }>();
  private readonly tokens = new Map<string, { member: string; expiresAt: number }>();
  private readonly customRoles = new Map<string, readonly string[]>();
  private apiRequests = 0;
  private writeRequests = 0;

  private constructor(private readonly server: Server) {}

  static async start(): Promise<FakeResourceManager> {
    const server = createServer();
    const fake = new FakeResourceManager(server);
    server.on('request', (req, res) => void fake.handle(req, res));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return fake;
  }

  get rootUrl(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/`;
  }

  /** Creates a project, folder or organization with the given bindings. */
  addResource(resource: string, bindings: Binding[] = []): void {
    const policy = { version: bindings.some((b) => b.condition) ? 3 : 1, etag: newEtag(), bindings: structuredClone(bindings) };
    this.resources.set(resource, { policy, previous: policy, staleLeft: 0, version: 1 });
  }

  addCustomRole(name: string, permissions: readonly string[]): void {
    this.customRoles.set(name, permissions);
  }

  /** An identity that can get tokens at /token; `member` is e.g. "serviceAccount:lapse@p.iam.gserviceaccount.com". */
  addIdentity(member: string): { clientId: string; secret: string } {
    const secret = randomBytes(16).toString('hex');
    this.identities.set(member, { member, secret });
    return { clientId: member, secret };
  }

  /** A TokenSource that gets tokens for `member` from this fake's token endpoint, as the connector's tests inject it. */
  tokenSource(member: string): TokenSource {
    const identity = this.identities.get(member);
    if (!identity) throw new Error(`no identity ${member}; addIdentity first`);
    return fakeTokenSource(`${this.rootUrl}token`, identity.member, identity.secret);
  }

  /** The policy as it really is now (what an operator sees in the console). */
  policy(resource: string): Policy {
    return structuredClone(this.stored(resource).policy);
  }

  /** A change made behind Lapse's back (console, Terraform): a new etag, as any write. */
  writeBehindBack(resource: string, mutate: (bindings: Binding[]) => void): void {
    const stored = this.stored(resource);
    const bindings = structuredClone(stored.policy.bindings ?? []);
    mutate(bindings);
    this.commit(stored, { ...stored.policy, bindings });
  }

  /** Expires every token issued so far, as if an hour had passed. */
  expireTokens(): void {
    for (const token of this.tokens.values()) token.expiresAt = 0;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    this.server.close();
    await once(this.server, 'close');
  }

  private stored(resource: string): Stored {
    const stored = this.resources.get(resource);
    if (!stored) throw new Error(`no resource ${resource} in the fake`);
    return stored;
  }

  private commit(stored: Stored, policy: Policy): Policy {
    const conditional = (policy.bindings ?? []).some((b) => b.condition);
    stored.previous = stored.policy;
    stored.policy = { version: conditional ? 3 : 1, etag: newEtag(), bindings: policy.bindings ?? [] };
    stored.staleLeft = this.injected.staleReadsAfterWrite;
    stored.version++;
    return stored.policy;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let text: string;
    try {
      text = await readBody(req);
    } catch {
      return send(res, 413, error(413, 'Request body too large.'), 0);
    }
    const url = new URL(req.url ?? '/', 'http://fake');
    if (req.method === 'POST' && url.pathname === '/token') return this.token(res, text);
    const route = ROUTE.exec(url.pathname);
    const answer = (r: ServerResponse, status: number, body: unknown) => send(r, status, body, this.injected.stallMs);
    if (req.method !== 'POST' || !route) return answer(res, 404, error(404, `No such method: ${req.method} ${url.pathname.slice(0, 100)}`));
    const [, kind, id, method] = route as unknown as [string, string, string, FakeCall['method']];
    const resource = `${kind}/${id}`;
    let caller: string | null = null;
    const log = (status: number, extra: Partial<FakeCall> = {}) => this.calls.push({ at: Date.now(), method, resource, caller, status, ...extra });
    try {
      caller = this.authenticate(req.headers.authorization);
      this.injectFailure();
      const body = text ? (JSON.parse(text) as Record<string, unknown>) : {};
      if (method === 'testIamPermissions') {
        const wanted = Array.isArray(body.permissions) ? (body.permissions as string[]).slice(0, 100) : [];
        const stored = this.resources.get(resource);
        if (!stored) throw denied(`resourcemanager.${kind}.get`, resource);
        const held = heldPermissions(stored.policy.bindings ?? [], caller, wanted, this.customRoles, new Date());
        log(200);
        return answer(res, 200, held.length > 0 ? { permissions: held } : {});
      }
      const stored = this.authorize(caller, kind, method, resource);
      if (method === 'getIamPolicy') {
        const requested = ((body.options as { requestedPolicyVersion?: number } | undefined)?.requestedPolicyVersion ?? 0) as number;
        if (![0, 1, 3].includes(requested)) throw new Refusal(400, `Invalid requestedPolicyVersion ${requested}: valid values are 0, 1 and 3.`);
        let policy = stored.policy;
        if (stored.staleLeft > 0) {
          stored.staleLeft--;
          this.sent.staleReads++;
          policy = stored.previous;
        }
        log(200);
        return answer(res, 200, requested === 3 ? policy : asVersion1(policy));
      }
      const policy = (body.policy ?? {}) as Policy;
      this.writeRequests++;
      const every = this.injected.concurrentWriteEvery;
      if (this.injected.concurrentWrites > 0 || (every > 0 && this.writeRequests % every === 0)) {
        this.injected.concurrentWrites = Math.max(0, this.injected.concurrentWrites - 1);
        this.commit(stored, stored.policy);
        this.calls.push({ at: Date.now(), method, resource, caller: 'someone-else', status: 200, etagSent: true, added: [], removed: [] });
      }
      if (policy.etag && policy.etag !== stored.policy.etag) {
        this.sent.conflicts++;
        const status = this.injected.conflictStatus;
        throw new Refusal(
          status,
          status === 409
            ? `There were concurrent policy changes. Please retry the whole read-modify-write with exponential backoff. The request's ETag '${policy.etag}' did not match the current policy's ETag '${stored.policy.etag}'.`
            : 'Precondition check failed.',
        );
      }
      try {
        checkPolicy(policy, new Set(this.customRoles.keys()));
      } catch (caught) {
        if (caught instanceof InvalidArgument) throw new Refusal(400, caught.message);
        throw caught;
      }
      const before = titles(stored.policy);
      const written = this.commit(stored, { bindings: mergeDuplicates(policy.bindings ?? []) });
      const after = titles(written);
      log(200, { etagSent: Boolean(policy.etag), added: [...after].filter((t) => !before.has(t)), removed: [...before].filter((t) => !after.has(t)) });
      return answer(res, 200, written);
    } catch (caught) {
      const refusal = caught instanceof Refusal ? caught : new Refusal(400, `Invalid JSON payload received. ${(caught as Error).message.slice(0, 100)}`);
      log(refusal.status);
      return answer(res, refusal.status, error(refusal.status, refusal.message, refusal.details));
    }
  }

  private token(res: ServerResponse, text: string): void {
    const form = new URLSearchParams(text);
    const identity = this.identities.get(form.get('client_id') ?? '');
    const ok = form.get('grant_type') === 'client_credentials' && identity !== undefined && identity.secret === form.get('client_secret');
    this.calls.push({ at: Date.now(), method: 'token', resource: '', caller: identity?.member ?? null, status: ok ? 200 : 401 });
    if (!ok) return reply(res, 401, { error: 'invalid_client', error_description: 'The OAuth client was not found.' });
    const token = `ya29.fake-${randomBytes(24).toString('base64url')}`;
    this.tokens.set(token, { member: identity.member, expiresAt: Date.now() + this.tokenTtlMs });
    reply(res, 200, { access_token: token, token_type: 'Bearer', expires_in: Math.floor(this.tokenTtlMs / 1000) });
  }

  private authenticate(header: string | undefined): string {
    const token = /^Bearer (\S+)$/.exec(header ?? '')?.[1];
    const found = token ? this.tokens.get(token) : undefined;
    if (!found || found.expiresAt <= Date.now()) {
      throw new Refusal(
        401,
        'Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.',
      );
    }
    return found.member;
  }

  private authorize(caller: string, kind: string, method: string, resource: string): Stored {
    const permission = `resourcemanager.${kind}.${method}`;
    const stored = this.resources.get(resource);
    if (!stored || heldPermissions(stored.policy.bindings ?? [], caller, [permission], this.customRoles, new Date()).length === 0)
      throw denied(permission, resource);
    return stored;
  }

  private injectFailure(): void {
    this.apiRequests++;
    const every = this.injected.failEvery;
    const status = this.injected.failNext.shift() ?? (every && this.apiRequests % every.nth === 0 ? every.status : undefined);
    if (status === undefined) return;
    if (status === 429) this.sent.throttled++;
    else this.sent.unavailable++;
    throw new Refusal(
      status,
      status === 429
        ? "Quota exceeded for quota metric 'Write requests' and limit 'Write requests per minute' of service 'cloudresourcemanager.googleapis.com'."
        : 'The service is currently unavailable.',
    );
  }
}

/** A TokenSource for the fake's token endpoint (client credentials): what tests and benches inject into the connector. */
export function fakeTokenSource(tokenUrl: string, clientId: string, secret: string): TokenSource {
  return async (_target: TargetConfig) => {
    const response = await fetch(tokenUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'client_credentials', client_id: clientId, client_secret: secret }).toString(),
    });
    if (!response.ok) throw new Error(`fake token endpoint answered HTTP ${response.status}`);
    const body = (await response.json()) as { access_token: string; expires_in: number };
    return { accessToken: body.access_token, expiresAt: Date.now() + body.expires_in * 1000 };
  };
}

function denied(permission: string, resource: string): Refusal {
  return new Refusal(403, `Permission '${permission}' denied on resource '//cloudresourcemanager.googleapis.com/${resource}' (or it may not exist).`, [
    {
      '@type': 'type.googleapis.com/google.rpc.ErrorInfo',
      reason: 'IAM_PERMISSION_DENIED',
      domain: 'cloudresourcemanager.googleapis.com',
      metadata: { permission, resource },
    },
  ]);
}

function error(status: number, message: string, details: unknown[] = []): unknown {
  return { error: { code: status, message, status: GOOGLE_STATUS[status] ?? 'UNKNOWN', ...(details.length > 0 ? { details } : {}) } };
}

function reply(res: ServerResponse, status: number, body: unknown): void {
  send(res, status, body, 0);
}

function send(res: ServerResponse, status: number, body: unknown, stallMs: number): void {
  const text = JSON.stringify(body);
  if (stallMs <= 0) return void res.writeHead(status, { 'content-type': 'application/json; charset=UTF-8' }).end(text);
  setTimeout(() => {
    res.writeHead(status, { 'content-type': 'application/json; charset=UTF-8' }).write(text.slice(0, text.length >> 1));
    setTimeout(() => res.end(text.slice(text.length >> 1)), stallMs).unref();
  }, stallMs).unref();
}

async function readBody(req: IncomingMessage): Promise<string> {
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY) throw new Error('too large');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function newEtag(): string {
  return Buffer.concat([Buffer.from([0x07, 0x06]), randomBytes(6)]).toString('base64');
}

function titles(policy: Policy): Set<string> {
  return new Set((policy.bindings ?? []).map((b) => b.condition?.title).filter((t): t is string => Boolean(t)));
}

/** IAM keeps one binding per role and condition: bindings that repeat one are merged. */
function mergeDuplicates(bindings: Binding[]): Binding[] {
  const byKey = new Map<string, Binding>();
  for (const binding of structuredClone(bindings)) {
    const key = JSON.stringify([binding.role, binding.condition ?? null]);
    const found = byKey.get(key);
    if (found) found.members = [...new Set([...(found.members ?? []), ...(binding.members ?? [])])];
    else byKey.set(key, binding);
  }
  return [...byKey.values()];
}
