import { createHash } from 'node:crypto';
import type * as GoogleLibrary from '@googleapis/cloudresourcemanager';
import type { auth as GoogleAuthLibrary } from '@googleapis/cloudresourcemanager';
import type { TargetConfig } from '../../config/types.js';
import type { GcpTarget } from './settings.js';

/**
 * Who Lapse is at Google, per target: the service-account key of `settings.credentials`, or
 * Application Default Credentials (workload identity, the metadata server, GOOGLE_APPLICATION_CREDENTIALS)
 * when it is absent. Built with the google-auth-library copy the REST client itself uses, and kept
 * per target so tokens are reused across calls until they near expiry.
 *
 * NB. google-auth-library signs its own JWT for Google's token endpoint and ignores a key file's
 * `token_uri`, so no local fake can stand in for that exchange: tests and the bench inject a
 * `TokenSource` instead, which replaces only how the bearer token is obtained.
 */
export type TokenSource = (target: TargetConfig) => Promise<{ readonly accessToken: string; readonly expiresAt: number }>;

const CLOUD_PLATFORM = 'https://www.googleapis.com/auth/cloud-platform';

type Client = InstanceType<typeof GoogleAuthLibrary.OAuth2> | InstanceType<typeof GoogleAuthLibrary.GoogleAuth>;

/**
 * The Google client library, loaded on first use: it is large (~0.2 s and ~17 MB to load) and
 * every `lapse` command builds the connectors, most of them never calling Google.
 */
let library: Promise<typeof GoogleLibrary> | undefined;
export function googleLibrary(): Promise<typeof GoogleLibrary> {
  library ??= import('@googleapis/cloudresourcemanager');
  return library;
}

export interface GcpAuth {
  readonly client: Client;
  /** The service account's address when a key is configured (its own bindings are not drift). */
  readonly self: string | undefined;
  /** Drops the cached token so the next request fetches a new one. */
  forgetToken(): Promise<void>;
}

export class GcpCredentials {
  private readonly cache = new Map<string, Promise<GcpAuth>>();

  constructor(private readonly tokenSource?: TokenSource) {}

  for(target: TargetConfig, settings: GcpTarget): Promise<GcpAuth> {
    const key = `${target.name}\0${settings.credentials ? digest(settings.credentials.private_key + settings.credentials.client_email) : 'adc'}`;
    let found = this.cache.get(key);
    if (!found) {
      const source = this.tokenSource;
      found = googleLibrary().then(({ auth }) => (source ? injected(auth, target, source) : google(auth, settings)));
      this.cache.set(key, found);
    }
    return found;
  }
}

function injected(googleAuth: typeof GoogleAuthLibrary, target: TargetConfig, source: TokenSource): GcpAuth {
  const client = new googleAuth.OAuth2();
  client.refreshHandler = async () => {
    const token = await source(target);
    return { access_token: token.accessToken, expiry_date: token.expiresAt };
  };
  return {
    client,
    self: undefined,
    forgetToken: async () => {
      client.credentials = {};
    },
  };
}

function google(googleAuth: typeof GoogleAuthLibrary, settings: GcpTarget): GcpAuth {
  const client = new googleAuth.GoogleAuth({
    scopes: [CLOUD_PLATFORM],
    ...(settings.credentials ? { credentials: settings.credentials } : {}),
  });
  return {
    client,
    self: settings.credentials ? `serviceAccount:${settings.credentials.client_email}` : undefined,
    forgetToken: async () => {
      const inner = (await client.getClient()) as { credentials?: unknown };
      inner.credentials = {};
    },
  };
}

function digest(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}
