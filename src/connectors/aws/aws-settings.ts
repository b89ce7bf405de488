import { Agent } from 'node:https';
import type { TargetConfig } from '../../config/types.js';
import { checkInteger, checkKnownKeys, defaultWarn, type Warn } from '../shared/index.js';
import { endpointProblems } from '../webhook/index.js';

/**
 * The settings every AWS connector's target shares: where AWS is (region, optional per-service
 * endpoints for VPC endpoints, FIPS or a local fake), how Lapse authenticates (static keys by
 * reference, else the SDK's default credential chain: environment, shared config, web identity,
 * ECS/EC2 role), and the SDK's retry and timeout bounds.
 *
 *   settings:
 *     region: eu-west-1
 *     credentials: { accessKeyId: ${env:AWS_ACCESS_KEY_ID}, secretAccessKey: ${env:AWS_SECRET_ACCESS_KEY} }
 *     endpoints: { sso: https://sso.eu-west-1.amazonaws.com }
 *     maxAttempts: 5
 *     timeoutMs: 10000
 */
export interface AwsTarget {
  readonly region: string;
  /** Static credentials; undefined means the SDK's default provider chain. */
  readonly credentials: AwsStaticCredentials | undefined;
  /** Per-service endpoint overrides, by the SDK's signing name (sso, identitystore, sts, iam). */
  readonly endpoints: Readonly<Partial<Record<AwsService, string>>>;
  readonly maxAttempts: number;
  readonly timeoutMs: number;
  readonly ca: string | undefined;
  readonly insecureSkipVerify: boolean;
}

export interface AwsStaticCredentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken?: string;
}

export const AWS_SERVICES = ['sso', 'identitystore', 'sts', 'iam'] as const;
export type AwsService = (typeof AWS_SERVICES)[number];

/** The keys of AwsTarget's settings; a connector adds its own. */
export const AWS_TARGET_KEYS = ['region', 'credentials', 'endpoints', 'maxAttempts', 'timeoutMs', 'allowInsecureHttp', 'tls'] as const;

const REGION = /^[a-z]{2}(-[a-z]+)+-\d{1,2}$/;
const ACCESS_KEY_ID = /^(AKIA|ASIA)[A-Z0-9]{12,124}$/;

/** Problems with the shared AWS settings of `target`, as "targets.<t>.settings.<key>: …" strings. */
export function awsTargetProblems(target: TargetConfig, ownKeys: readonly string[]): string[] {
  const where = `targets.${target.name}.settings`;
  const s = target.settings;
  const problems = checkKnownKeys(s, [...AWS_TARGET_KEYS, ...ownKeys], where);
  if (typeof s.region !== 'string' || !REGION.test(s.region)) problems.push(`${where}.region: must be an AWS region name, e.g. us-east-1`);
  if (s.credentials !== undefined) problems.push(...credentialProblems(s.credentials, `${where}.credentials`));
  if (s.endpoints !== undefined) {
    if (typeof s.endpoints !== 'object' || s.endpoints === null || Array.isArray(s.endpoints)) {
      problems.push(`${where}.endpoints: must map services (${AWS_SERVICES.join(', ')}) to https URLs`);
    } else {
      for (const [service, url] of Object.entries(s.endpoints)) {
        if (!(AWS_SERVICES as readonly string[]).includes(service)) {
          problems.push(`${where}.endpoints.${service}: unknown service; use ${AWS_SERVICES.join(', ')}`);
          continue;
        }
        const example = `https://${service}.${typeof s.region === 'string' ? s.region : 'us-east-1'}.amazonaws.com`;
        const found = endpointProblems({ url, allowInsecureHttp: s.allowInsecureHttp, tls: s.tls }, where, example);
        problems.push(...found.map((p) => (p.startsWith(`${where}.url:`) ? `${where}.endpoints.${service}:${p.slice(`${where}.url:`.length)}` : p)));
      }
    }
  }
  problems.push(
    ...[checkInteger(s.maxAttempts, `${where}.maxAttempts`, 1, 10), checkInteger(s.timeoutMs, `${where}.timeoutMs`, 100, 120_000)].filter(
      (p): p is string => p !== undefined,
    ),
  );
  return [...new Set(problems)];
}

function credentialProblems(value: unknown, where: string): string[] {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return [`${where}: must be a map with accessKeyId and secretAccessKey (secret references), or left out to use the default credential chain`];
  }
  const c = value as Record<string, unknown>;
  const problems = checkKnownKeys(c, ['accessKeyId', 'secretAccessKey', 'sessionToken'], where);
  if (typeof c.accessKeyId !== 'string' || !ACCESS_KEY_ID.test(c.accessKeyId))
    problems.push(`${where}.accessKeyId: must be an AWS access key id (AKIA… or ASIA…)`);
  if (typeof c.secretAccessKey !== 'string' || c.secretAccessKey.length < 16 || c.secretAccessKey.length > 256) {
    problems.push(`${where}.secretAccessKey: must be a secret reference, e.g. \${env:AWS_SECRET_ACCESS_KEY}`);
  }
  if (c.sessionToken !== undefined && (typeof c.sessionToken !== 'string' || c.sessionToken.length === 0 || c.sessionToken.length > 4096)) {
    problems.push(`${where}.sessionToken: must be a secret reference of up to 4096 characters`);
  }
  return problems;
}

/** The shared settings of a target already checked by awsTargetProblems. */
export function parseAwsTarget(target: TargetConfig): AwsTarget {
  const s = target.settings;
  const c = s.credentials as Record<string, string> | undefined;
  const tls = (s.tls ?? {}) as { ca?: string; insecureSkipVerify?: boolean };
  return {
    region: s.region as string,
    credentials: c
      ? { accessKeyId: c.accessKeyId!, secretAccessKey: c.secretAccessKey!, ...(c.sessionToken ? { sessionToken: c.sessionToken } : {}) }
      : undefined,
    endpoints: (s.endpoints ?? {}) as Partial<Record<AwsService, string>>,
    maxAttempts: (s.maxAttempts as number | undefined) ?? 5,
    timeoutMs: (s.timeoutMs as number | undefined) ?? 10_000,
    ca: tls.ca,
    insecureSkipVerify: tls.insecureSkipVerify === true,
  };
}

const warned = new Set<string>();

/**
 * The options every AWS SDK client of a target is built with. Retries (throttling, 5xx, clock
 * skew) are the SDK's standard mode, bounded by maxAttempts; each attempt by timeoutMs.
 */
export function awsClientConfig(target: TargetConfig, settings: AwsTarget, service: AwsService, warn: Warn = defaultWarn) {
  const endpoint = settings.endpoints[service];
  if (settings.insecureSkipVerify && !warned.has(target.name)) {
    warned.add(target.name);
    warn(
      `WARNING: target ${target.name} calls AWS without verifying its TLS certificate (tls.insecureSkipVerify: true); anyone on the path can read and change the calls`,
    );
  }
  const httpsAgent =
    settings.ca || settings.insecureSkipVerify ? new Agent({ keepAlive: true, ca: settings.ca, rejectUnauthorized: !settings.insecureSkipVerify }) : undefined;
  return {
    region: settings.region,
    ...(endpoint ? { endpoint } : {}),
    ...(settings.credentials ? { credentials: settings.credentials } : {}),
    maxAttempts: settings.maxAttempts,
    retryMode: 'standard',
    requestHandler: { requestTimeout: settings.timeoutMs, connectionTimeout: settings.timeoutMs, ...(httpsAgent ? { httpsAgent } : {}) },
  };
}
