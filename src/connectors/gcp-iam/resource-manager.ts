import { setTimeout as sleep } from 'node:timers/promises';
import type { cloudresourcemanager_v3 } from '@googleapis/cloudresourcemanager';
import { LapseError } from '../../domain/errors.js';
import { googleLibrary, type GcpAuth } from './credentials.js';
import type { Policy } from './iam-policy.js';

/**
 * Cloud Resource Manager v3 as Lapse uses it: the IAM policy of a project, folder or organization
 * (read always as version 3, so conditional bindings come back whole) and testIamPermissions,
 * through the `@googleapis/cloudresourcemanager` REST client with the call's AbortSignal and a
 * timeout per request. Throttling (429 RESOURCE_EXHAUSTED) and passing faults (500/502/503/504,
 * a lost connection) are retried here with capped, jittered backoff; a stale etag surfaces as
 * `EtagConflict` for the read-modify-write loop above; anything else becomes a LapseError saying
 * what failed, where, and how to fix it (the missing permission and the role that has it).
 */
export class EtagConflict extends Error {}

/** How often one request is tried while Google throttles or fails passingly (bounded by the call's deadline too). */
const ATTEMPTS = 8;
const BACKOFF_MIN_MS = 100;
const BACKOFF_MAX_MS = 5_000;
const RETRIED = new Set([429, 500, 502, 503, 504]);

type Kind = 'projects' | 'folders' | 'organizations';

export class ResourceManager {
  private client: Promise<{ api: cloudresourcemanager_v3.Cloudresourcemanager; auth: GcpAuth }> | undefined;

  constructor(
    private readonly target: string,
    private readonly auth: () => Promise<GcpAuth>,
    private readonly rootUrl: string,
    private readonly timeoutMs: number,
  ) {}

  async getPolicy(resource: string, signal: AbortSignal): Promise<Policy> {
    return this.call('getIamPolicy', resource, signal, (api, options) =>
      api.getIamPolicy({ resource, requestBody: { options: { requestedPolicyVersion: 3 } } }, options),
    );
  }

  /** Writes bindings and etag only (the API's default mask): audit configs stay as they are. */
  async setPolicy(resource: string, policy: Policy, signal: AbortSignal): Promise<Policy> {
    return this.call('setIamPolicy', resource, signal, (api, options) =>
      api.setIamPolicy({ resource, requestBody: { policy: { version: 3, etag: policy.etag ?? null, bindings: policy.bindings ?? [] } } }, options),
    );
  }

  /** The permissions of `wanted` the caller holds on the resource. */
  async testPermissions(resource: string, wanted: string[], signal: AbortSignal): Promise<string[]> {
    const result = await this.call('testIamPermissions', resource, signal, (api, options) =>
      api.testIamPermissions({ resource, requestBody: { permissions: wanted } }, options),
    );
    return (result as { permissions?: string[] }).permissions ?? [];
  }

  private async call<T>(
    method: 'getIamPolicy' | 'setIamPolicy' | 'testIamPermissions',
    resource: string,
    signal: AbortSignal,
    send: (api: PolicyMethods, options: RequestOptions) => Promise<{ data: T }>,
  ): Promise<T> {
    this.client ??= Promise.all([googleLibrary(), this.auth()]).then(([library, auth]) => ({
      api: library.cloudresourcemanager({ version: 'v3', auth: auth.client, rootUrl: this.rootUrl }),
      auth,
    }));
    const client = await this.client;
    const api = client.api[kindOf(resource)] as unknown as PolicyMethods;
    let reauthenticated = false;
    for (let attempt = 1; ; attempt++) {
      if (signal.aborted) throw this.deadline(method, resource, signal);
      try {
        const attemptSignal = AbortSignal.any([signal, AbortSignal.timeout(this.timeoutMs)]);
        // NB. Node's own fetch, not gaxios's default node-fetch: node-fetch can emit an unhandled
        // 'error' on a stream of a request its signal aborted, which kills the process (seen in
        // the kill -9 test under load, and with a deadline passing before the answer arrives).
        return (await send(api, { signal: attemptSignal, retry: false, timeout: this.timeoutMs, fetchImplementation: fetch })).data;
      } catch (error) {
        if (signal.aborted) throw this.deadline(method, resource, signal);
        const status = statusOf(error);
        if (status === 409 || status === 412) throw new EtagConflict(`${method} ${resource}: HTTP ${status} ${googleStatus(error) ?? ''}`);
        // NB. A token revoked or expired early: fetch a new one once, then believe the 401.
        if (status === 401 && !reauthenticated) {
          reauthenticated = true;
          await client.auth.forgetToken();
          continue;
        }
        if ((status === undefined || RETRIED.has(status)) && attempt < ATTEMPTS) {
          await backoff(attempt, signal).catch(() => undefined);
          continue;
        }
        throw this.failure(method, resource, error, status, attempt);
      }
    }
  }

  private failure(method: string, resource: string, error: unknown, status: number | undefined, attempts: number): LapseError {
    const where = `targets.${this.target}`;
    const prefix = `gcp-iam target ${this.target}: ${method} on ${resource}`;
    if (status === undefined) {
      return new LapseError('connector_failed', `${prefix} failed after ${attempts} attempts: ${transportReason(error)}`, {
        where: `${where}.settings.rootUrl`,
        hint: 'check that Lapse can reach Cloud Resource Manager (network egress, proxy, settings.rootUrl)',
      });
    }
    const message = googleMessage(error);
    const detail = `${prefix} answered HTTP ${status}${googleStatus(error) ? ` ${googleStatus(error)}` : ''}${message ? `: ${message}` : ''}`;
    if (status === 401) {
      return new LapseError('connector_failed', detail, {
        where: `${where}.settings.credentials`,
        hint: "Google refused Lapse's credentials: check the service-account key reference (or the Application Default Credentials of Lapse's host) and that the key is not disabled",
      });
    }
    if (status === 403) {
      const permission = deniedPermission(error) ?? `resourcemanager.${resource.split('/')[0]}.${method}`;
      return new LapseError('connector_failed', `${prefix} was denied: Lapse's identity lacks ${permission}`, {
        where,
        permission,
        hint: `grant Lapse's service account ${ADMIN_ROLE[kindOf(resource)]} on ${resource} (or a custom role with ${permissionsFor(resource).join(' and ')}); if the ${kindOf(resource).slice(0, -1)} does not exist, fix the entitlement's resource`,
      });
    }
    if (RETRIED.has(status)) {
      return new LapseError('connector_failed', `${detail} (still, after ${attempts} attempts with backoff)`, {
        where,
        hint:
          status === 429
            ? 'Cloud Resource Manager quota is exhausted; Lapse retries the call later, or raise the quota of the project that owns the credentials'
            : 'Google is unavailable; Lapse retries later',
      });
    }
    return new LapseError('connector_failed', detail, { where, hint: 'check the entitlement settings (role, resource) and the principal mapping' });
  }

  private deadline(method: string, resource: string, signal: AbortSignal): LapseError {
    const reason = signal.reason instanceof Error ? signal.reason.message : 'aborted';
    return new LapseError('connector_timeout', `gcp-iam target ${this.target}: ${method} on ${resource} did not finish before its deadline (${reason})`, {
      where: `targets.${this.target}`,
      hint: 'check that Cloud Resource Manager is reachable, or raise scheduler.connectorTimeout',
    });
  }
}

/** The predefined role that holds exactly getIamPolicy and setIamPolicy on each kind of resource (plus reads). */
export const ADMIN_ROLE: Record<Kind, string> = {
  projects: 'roles/resourcemanager.projectIamAdmin',
  folders: 'roles/resourcemanager.folderIamAdmin',
  organizations: 'roles/iam.securityAdmin',
};

export function kindOf(resource: string): Kind {
  return resource.slice(0, resource.indexOf('/')) as Kind;
}

/** The two permissions Lapse needs on a resource. */
export function permissionsFor(resource: string): string[] {
  const kind = kindOf(resource);
  return [`resourcemanager.${kind}.getIamPolicy`, `resourcemanager.${kind}.setIamPolicy`];
}

interface RequestOptions {
  readonly signal: AbortSignal;
  readonly retry: false;
  readonly timeout: number;
  readonly fetchImplementation: typeof fetch;
}

interface PolicyMethods {
  getIamPolicy(params: object, options: object): Promise<{ data: Policy }>;
  setIamPolicy(params: object, options: object): Promise<{ data: Policy }>;
  testIamPermissions(params: object, options: object): Promise<{ data: { permissions?: string[] } }>;
}

/** Full jitter between 0 and min(max, min·2^attempt): many callers backing off together spread out. */
export async function backoff(attempt: number, signal: AbortSignal, minMs = BACKOFF_MIN_MS, maxMs = BACKOFF_MAX_MS): Promise<void> {
  const ceiling = Math.min(maxMs, minMs * 2 ** attempt);
  await sleep(minMs / 2 + Math.random() * ceiling, undefined, { signal });
}

interface GoogleErrorBody {
  error?: { code?: number; message?: string; status?: string; details?: { reason?: string; metadata?: { permission?: string } }[] };
}

function body(error: unknown): GoogleErrorBody {
  const data = (error as { response?: { data?: unknown } }).response?.data;
  return typeof data === 'object' && data !== null ? (data as GoogleErrorBody) : {};
}

function statusOf(error: unknown): number | undefined {
  const status = (error as { response?: { status?: unknown } }).response?.status;
  return typeof status === 'number' ? status : undefined;
}

function googleStatus(error: unknown): string | undefined {
  return body(error).error?.status;
}

/** Google's own message, printable and bounded (it names the resource, never the token). */
function googleMessage(error: unknown): string {
  return (body(error).error?.message ?? '').replace(/[^\x20-\x7e]/g, ' ').slice(0, 300);
}

function deniedPermission(error: unknown): string | undefined {
  const fromDetails = body(error).error?.details?.find((d) => d.reason === 'IAM_PERMISSION_DENIED')?.metadata?.permission;
  return fromDetails ?? /Permission '([a-zA-Z.]{1,100})' denied/.exec(googleMessage(error))?.[1];
}

function transportReason(error: unknown): string {
  const code = (error as { code?: unknown }).code;
  const message = error instanceof Error ? error.message : String(error);
  // gaxios redacts authorization headers, but the message is ours to bound.
  return `${typeof code === 'string' ? `${code}: ` : ''}${message.replace(/[^\x20-\x7e]/g, ' ').slice(0, 200)}`;
}
