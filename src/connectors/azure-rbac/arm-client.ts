import { rootCertificates } from 'node:tls';
import { AuthorizationManagementClient } from '@azure/arm-authorization';
import { createPipelineRequest } from '@azure/core-rest-pipeline';
import { ClientCertificateCredential, ClientSecretCredential, DefaultAzureCredential, ManagedIdentityCredential, type TokenCredential } from '@azure/identity';
import type { TargetConfig } from '../../config/types.js';
import { armFailure, toLapseError, type ArmFailure } from './arm-errors.js';
import type { AzureTarget } from './settings.js';

/**
 * Lapse's way into Azure Resource Manager for one target: a credential (client secret,
 * certificate, managed identity or the default chain) against the configured authority, and an
 * `AuthorizationManagementClient` for the configured ARM endpoint, both trusting `tls.ca` on top
 * of the system roots. Every call gets the grant's deadline and a per-request timeout as its
 * `abortSignal`; the SDK's own retries (429 with Retry-After, 5xx) run inside that bound.
 */
export type Refusal = ArmFailure & { readonly refused: true };

export function isRefusal(value: unknown): value is Refusal {
  return typeof value === 'object' && value !== null && (value as Refusal).refused === true;
}

// NB. The SDK wants a subscription id up front, for operations addressed by subscription; Lapse
// only uses operations addressed by scope, where this value never appears in a request.
const UNUSED_SUBSCRIPTION = '00000000-0000-0000-0000-000000000000';

const clients = new WeakMap<TargetConfig, AuthorizationManagementClient>();

function credentialFor(settings: AzureTarget): TokenCredential {
  // NB. A private CA must not replace the public roots: the authority (login.microsoftonline.com)
  // and a private ARM endpoint can be issued by different CAs.
  const tlsOptions = settings.ca ? { ca: [...rootCertificates, settings.ca] } : undefined;
  const common = { authorityHost: settings.authorityHost, disableInstanceDiscovery: settings.disableInstanceDiscovery, ...(tlsOptions ? { tlsOptions } : {}) };
  switch (settings.credential) {
    case 'clientSecret':
      return new ClientSecretCredential(settings.tenantId, settings.clientId!, settings.clientSecret!, common);
    case 'clientCertificate':
      return new ClientCertificateCredential(settings.tenantId, settings.clientId!, { certificate: settings.clientCertificate! }, common);
    case 'managedIdentity':
      return settings.clientId ? new ManagedIdentityCredential({ clientId: settings.clientId }) : new ManagedIdentityCredential();
    case 'default':
      return new DefaultAzureCredential({
        tenantId: settings.tenantId,
        authorityHost: settings.authorityHost,
        ...(settings.clientId ? { managedIdentityClientId: settings.clientId, workloadIdentityClientId: settings.clientId } : {}),
      });
  }
}

export class Arm {
  readonly client: AuthorizationManagementClient;

  constructor(
    readonly target: TargetConfig,
    readonly settings: AzureTarget,
    private readonly signal: AbortSignal,
  ) {
    let client = clients.get(target);
    if (!client) {
      client = new AuthorizationManagementClient(credentialFor(settings), UNUSED_SUBSCRIPTION, {
        $host: settings.endpoint,
        endpoint: settings.endpoint,
        credentialScopes: [`${settings.endpoint}/.default`],
        ...(settings.ca ? { tlsOptions: { ca: [...rootCertificates, settings.ca] } } : {}),
        retryOptions: { maxRetries: 4, retryDelayInMs: 250, maxRetryDelayInMs: 8_000 },
        userAgentOptions: { userAgentPrefix: 'lapse-azure-rbac' },
      });
      clients.set(target, client);
    }
    this.client = client;
  }

  /**
   * One ARM operation. Resolves with its result, or with a Refusal when ARM answered with one of
   * the `expected` error codes (or "404" for any not-found); anything else throws a LapseError.
   */
  async call<T>(
    what: string,
    action: string,
    scope: string,
    work: (options: { abortSignal: AbortSignal }) => Promise<T>,
    expected: readonly string[] = [],
  ): Promise<T | Refusal> {
    const timeout = AbortSignal.timeout(this.settings.timeoutMs);
    const abortSignal = AbortSignal.any([this.signal, timeout]);
    try {
      if (this.signal.aborted) throw new Error('aborted');
      return await work({ abortSignal });
    } catch (error) {
      const failure = armFailure(error);
      if (failure && (expected.includes(failure.code) || (failure.status === 404 && expected.includes('404')))) return { ...failure, refused: true };
      throw toLapseError(error, { target: this.target, settings: this.settings, what, action, scope, signal: this.signal, timedOut: timeout.aborted });
    }
  }

  /** Like call, but throws on any refusal: for operations with no expected failure. */
  async must<T>(what: string, action: string, scope: string, work: (options: { abortSignal: AbortSignal }) => Promise<T>): Promise<T> {
    return (await this.call(what, action, scope, work)) as T;
  }

  /** Every item of a paged list (the SDK follows nextLink). */
  async all<T>(what: string, action: string, scope: string, list: (options: { abortSignal: AbortSignal }) => AsyncIterable<T>): Promise<T[]> {
    return this.must(what, action, scope, async (options) => {
      const items: T[] = [];
      for await (const item of list(options)) {
        items.push(item);
        if (items.length > 100_000) break; // a runaway list must not exhaust memory
      }
      return items;
    });
  }

  /**
   * GET of an ARM path the SDK has no operation for (the caller's permissions at a subscription),
   * through the client's own pipeline (token, TLS, retries); ARM errors become RestErrors.
   */
  async getJson(what: string, action: string, scope: string, path: string): Promise<unknown> {
    return this.must(what, action, scope, async ({ abortSignal }) => {
      const response = await this.client.sendRequest(createPipelineRequest({ url: `${this.settings.endpoint}${path}`, method: 'GET', abortSignal }));
      const body = response.bodyAsText ?? '';
      if (response.status >= 200 && response.status < 300) return JSON.parse(body) as unknown;
      let parsed: { error?: { code?: string; message?: string } } = {};
      try {
        parsed = JSON.parse(body) as typeof parsed;
      } catch {
        // not JSON: keep the status
      }
      throw Object.assign(new Error(parsed.error?.message ?? `HTTP ${response.status}`), {
        name: 'RestError',
        statusCode: response.status,
        code: parsed.error?.code ?? `HTTP${response.status}`,
      });
    });
  }
}

/** Scopes go into the SDK's paths after a "/": without their leading one. */
export function sdkScope(scope: string): string {
  return scope.replace(/^\/+/, '');
}
