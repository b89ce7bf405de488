import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Agent as HttpsAgent, type AgentOptions } from 'node:https';
import type { Agent as HttpAgent } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import type * as KubernetesSdk from '@kubernetes/client-node';
import type { AuthorizationV1Api, ConfigurationOptions, CoreV1Api, ObservableMiddleware, RbacAuthorizationV1Api } from '@kubernetes/client-node';
import type { TargetConfig } from '../../config/types.js';
import { LapseError } from '../../domain/errors.js';
import { warnIfInsecure, type Warn } from '../shared/index.js';
import type { KubeTarget } from './settings.js';

type Sdk = typeof KubernetesSdk;
let sdk: Promise<Sdk> | undefined;
/**
 * NB. The SDK takes most of a second to import (thousands of generated model classes); loading it
 * on first use keeps every other `lapse` command from paying for it.
 */
const loadSdk = () => (sdk ??= import('@kubernetes/client-node'));

/** The API groups Lapse calls, from one kubeconfig. */
export interface KubeClients {
  readonly rbac: RbacAuthorizationV1Api;
  readonly core: CoreV1Api;
  readonly authorization: AuthorizationV1Api;
}

/** Where requesters reach the API server: written into the kubeconfig of a service-account grant. */
export interface ClusterEndpoint {
  readonly server: string;
  /** PEM; undefined when the server is verified against the system roots. */
  readonly caPem: string | undefined;
}

const MAX_ATTEMPTS = 6;
/** A Retry-After longer than this is cut to it: the call's deadline bounds the wait anyway. */
const MAX_RETRY_AFTER_MS = 30_000;
const RETRYABLE = new Set([429, 500, 502, 503, 504]);
const TRANSIENT = new Set(['ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN']);

/**
 * The Kubernetes API as Lapse uses it: the official client over one kubeconfig, each request with
 * the call's deadline and a per-request timeout, retried on 429 (after Retry-After) and on 5xx or
 * network errors (with backoff), and failures turned into LapseErrors naming the request, the
 * server's reason and the fix. Nothing here logs or repeats credentials.
 */
export class KubeApi {
  private readonly connections = new ConnectionPool();

  private constructor(
    private readonly target: TargetConfig,
    private readonly settings: KubeTarget,
    private readonly sdk: Sdk,
    readonly clients: KubeClients,
    readonly endpoint: ClusterEndpoint,
  ) {}

  static async open(target: TargetConfig, settings: KubeTarget, warn: Warn): Promise<KubeApi> {
    const sdk = await loadSdk();
    const kc = new sdk.KubeConfig();
    const where = `targets.${target.name}.settings`;
    try {
      const { credentials } = settings;
      if (credentials.source === 'in-cluster') kc.loadFromCluster();
      else if (credentials.source === 'path') kc.loadFromFile(credentials.path);
      else kc.loadFromString(credentials.kubeconfig);
      if (credentials.source !== 'in-cluster' && credentials.context) kc.setCurrentContext(credentials.context);
    } catch (error) {
      throw new LapseError('config_invalid', `kubernetes target ${target.name}: cannot load its kubeconfig: ${(error as Error).message}`, {
        where,
        hint: 'check settings.kubeconfig / kubeconfigPath / context (kubectl --kubeconfig <file> config view shows what it holds)',
      });
    }
    const cluster = kc.getCurrentCluster();
    if (!cluster || !kc.getCurrentUser())
      throw new LapseError('config_invalid', `kubernetes target ${target.name}: the kubeconfig's context names no cluster or user`, { where });
    if (!cluster.server.startsWith('https://'))
      throw new LapseError(
        'config_invalid',
        `kubernetes target ${target.name}: the API server ${cluster.server} is not https; Lapse refuses to send credentials in the clear`,
        { where },
      );
    if (cluster.skipTLSVerify && !settings.tls.insecureSkipVerify)
      throw new LapseError('config_invalid', `kubernetes target ${target.name}: the kubeconfig's cluster sets insecure-skip-tls-verify: true`, {
        where,
        hint: 'give the cluster CA (certificate-authority-data or settings.tls.ca), or set settings.tls.insecureSkipVerify: true if you really mean it',
      });
    let caPem: string | undefined;
    try {
      caPem =
        settings.tls.ca ??
        (cluster.caData ? Buffer.from(cluster.caData, 'base64').toString('utf8') : cluster.caFile ? readFileSync(cluster.caFile, 'utf8') : undefined);
    } catch (error) {
      throw new LapseError('config_invalid', `kubernetes target ${target.name}: cannot read the cluster CA: ${(error as Error).message}`, {
        where,
        hint: "check the kubeconfig's certificate-authority path, or give the CA as settings.tls.ca",
      });
    }
    kc.clusters = kc.clusters.map((c) =>
      c.name === cluster.name
        ? {
            ...c,
            ...(settings.tls.ca ? { caData: Buffer.from(settings.tls.ca).toString('base64'), caFile: undefined } : {}),
            skipTLSVerify: settings.tls.insecureSkipVerify,
          }
        : c,
    );
    warnIfInsecure(settings.tls.insecureSkipVerify ? { rejectUnauthorized: false } : undefined, target.name, warn);
    const clients = {
      rbac: kc.makeApiClient(sdk.RbacAuthorizationV1Api),
      core: kc.makeApiClient(sdk.CoreV1Api),
      authorization: kc.makeApiClient(sdk.AuthorizationV1Api),
    };
    const endpoint = settings.requesterServer
      ? { server: settings.requesterServer, caPem: settings.requesterCa }
      : { server: cluster.server, caPem: settings.requesterCa ?? caPem };
    return new KubeApi(target, settings, sdk, clients, endpoint);
  }

  /**
   * Runs one request (`what`, e.g. "delete RoleBinding prod/lapse-…", names the request in errors),
   * retrying what is worth retrying. Statuses in `accept` resolve as null instead of throwing.
   */
  async call<T>(
    what: string,
    signal: AbortSignal,
    request: (options: ConfigurationOptions<ObservableMiddleware>) => Promise<T>,
    accept: readonly number[] = [],
  ): Promise<T | null> {
    const result = await this.outcome(what, signal, request, accept);
    return 'value' in result ? result.value : null;
  }

  /** As `call`, saying which accepted status came back. */
  async outcome<T>(
    what: string,
    signal: AbortSignal,
    request: (options: ConfigurationOptions<ObservableMiddleware>) => Promise<T>,
    accept: readonly number[],
  ): Promise<{ value: T } | { status: number }> {
    for (let attempt = 1; ; attempt++) {
      if (signal.aborted) throw this.deadline(what);
      const attemptSignal = AbortSignal.any([signal, AbortSignal.timeout(this.settings.timeoutMs)]);
      try {
        return { value: await request(this.options(attemptSignal)) };
      } catch (error) {
        if (signal.aborted) throw this.deadline(what);
        const status = error instanceof this.sdk.ApiException ? (error.code as number) : undefined;
        if (status !== undefined && accept.includes(status)) return { status };
        // Dropped connections and per-request timeouts are worth another try; an untrusted certificate or a failing exec credential plugin is not.
        const { name, code } = error as { name?: string; code?: string };
        const retryable = status === undefined ? name === 'AbortError' || (name === 'FetchError' && TRANSIENT.has(code ?? '')) : RETRYABLE.has(status);
        if (!retryable || attempt >= MAX_ATTEMPTS) throw this.failure(what, error, status, attemptSignal.aborted);
        const headers = error instanceof this.sdk.ApiException ? (error.headers as Record<string, string>) : {};
        await sleep(this.backoff(attempt, status, headers['retry-after']), undefined, { signal }).catch(() => undefined);
      }
    }
  }

  /** How long to wait before the next attempt: the server's Retry-After on 429, else capped exponential backoff with jitter. */
  private backoff(attempt: number, status: number | undefined, retryAfter: string | undefined): number {
    const seconds = Number(retryAfter);
    if (status === 429 && Number.isFinite(seconds) && seconds >= 0) return Math.min(seconds * 1000, MAX_RETRY_AFTER_MS);
    return Math.min(100 * 2 ** attempt, 3_000) * (0.5 + Math.random() / 2);
  }

  private options(signal: AbortSignal): ConfigurationOptions<ObservableMiddleware> {
    const { Observable } = this.sdk;
    return {
      middleware: [
        {
          pre: (context) => {
            context.setSignal(signal);
            const agent = context.getAgent();
            if (agent) context.setAgent(this.connections.reuse(agent));
            return new Observable(Promise.resolve(context));
          },
          post: (context) => new Observable(Promise.resolve(context)),
        },
      ],
      middlewareMergeStrategy: 'append',
    };
  }

  private failure(what: string, error: unknown, status: number | undefined, timedOut: boolean): LapseError {
    const where = `targets.${this.target.name}`;
    if (status === undefined) {
      const why = timedOut ? `no answer within ${this.settings.timeoutMs} ms` : (error as Error).message.split('\n')[0]!.slice(0, 300);
      return new LapseError('connector_failed', `kubernetes target ${this.target.name}: ${what} failed: ${why}`, {
        where,
        hint: `check that the API server at ${this.endpoint.server} is reachable from Lapse and that its certificate is signed by the CA Lapse trusts`,
      });
    }
    const reported = statusOf(error);
    const message = `kubernetes target ${this.target.name}: ${what} answered HTTP ${status}${reported.reason ? ` ${reported.reason}` : ''}${reported.message ? `: ${reported.message}` : ''}`;
    return new LapseError('connector_failed', message, { where, ...(hintFor(status, reported.message) ? { hint: hintFor(status, reported.message) } : {}) });
  }

  private deadline(what: string): LapseError {
    return new LapseError('connector_timeout', `kubernetes target ${this.target.name}: ${what} did not finish before the deadline`, {
      where: `targets.${this.target.name}`,
      hint: 'check that the API server is reachable and not overloaded, or raise scheduler.connectorTimeout',
    });
  }
}

/**
 * NB. The SDK makes a new https.Agent for every request, so every request pays a TCP and TLS
 * handshake (measured: ~20 ms a request on loopback). This swaps in one keep-alive agent per
 * distinct set of TLS options, so a rotated client certificate (exec plugins, token files) still
 * gets a fresh agent. Proxy agents are left as the SDK made them.
 */
class ConnectionPool {
  private readonly agents = new Map<string, HttpsAgent>();

  reuse(agent: HttpAgent | HttpsAgent): HttpAgent | HttpsAgent {
    if (agent.constructor !== HttpsAgent) return agent;
    const options = (agent as HttpsAgent & { options: AgentOptions }).options;
    const hash = createHash('sha256');
    for (const part of [options.ca, options.cert, options.key, options.pfx, options.passphrase, options.servername, String(options.rejectUnauthorized)])
      hash.update(`${part === undefined ? '-' : Buffer.isBuffer(part) ? part.toString('base64') : String(part)}\0`);
    const key = hash.digest('hex');
    let pooled = this.agents.get(key);
    if (!pooled) {
      if (this.agents.size >= 8) {
        for (const old of this.agents.values()) old.destroy();
        this.agents.clear();
      }
      pooled = new HttpsAgent({ ...options, keepAlive: true, maxSockets: 64 });
      this.agents.set(key, pooled);
    }
    return pooled;
  }
}

/** The reason and message of the API server's Status body, bounded and stripped of control characters. */
export function statusOf(error: unknown): { reason: string | undefined; message: string | undefined } {
  const body = (error as { body?: unknown }).body;
  let parsed: { reason?: unknown; message?: unknown } | undefined;
  try {
    parsed = typeof body === 'string' ? (JSON.parse(body) as typeof parsed) : (body as typeof parsed);
  } catch {
    parsed = undefined;
  }
  const clean = (value: unknown) => (typeof value === 'string' ? value.replace(/[^\x20-\x7e]/g, ' ').slice(0, 500) : undefined);
  return { reason: clean(parsed?.reason), message: clean(parsed?.message) };
}

function hintFor(status: number, message: string | undefined): string | undefined {
  if (status === 401) return "the API server did not accept Lapse's credentials: check the kubeconfig's user (an expired token, a rotated certificate)";
  if (status === 403 && message?.includes('attempting to grant RBAC permissions'))
    return "Lapse's identity needs the bind verb on the role it grants (RBAC's escalation check); see the ClusterRole in docs/connectors/kubernetes.md";
  if (status === 403)
    return "Lapse's identity lacks the permission named above; grant the ClusterRole in docs/connectors/kubernetes.md (lapse target check lists everything missing)";
  if (status === 404 && message?.startsWith('namespaces')) return 'create the namespace, or fix the entitlement';
  if (status === 429) return 'the API server kept throttling Lapse (API Priority and Fairness); Lapse retries the call later';
  return undefined;
}
