import type { EntitlementConfig, TargetConfig } from '../../config/types.js';
import { LapseError } from '../../domain/errors.js';
import { checkInteger, checkKnownKeys } from '../shared/index.js';

/** Settings of an `azure-rbac` target: how Lapse signs in to Entra ID and reaches ARM. */
export interface AzureTarget {
  readonly tenantId: string;
  readonly clientId: string | undefined;
  readonly credential: 'clientSecret' | 'clientCertificate' | 'managedIdentity' | 'default';
  readonly clientSecret: string | undefined;
  readonly clientCertificate: string | undefined;
  readonly authorityHost: string;
  readonly disableInstanceDiscovery: boolean;
  /** ARM base URL without a trailing slash, e.g. https://management.azure.com. */
  readonly endpoint: string;
  readonly ca: string | undefined;
  readonly timeoutMs: number;
  /** Lapse principal id -> Entra object id. */
  readonly objectIds: Readonly<Record<string, string>>;
  readonly principalType: 'User' | 'Group' | 'ServicePrincipal';
}

/** One entitlement: a role at a scope, through PIM or a plain role assignment. */
export interface AzureEntitlement {
  readonly scope: string;
  /** A role definition GUID, a full role definition id, or a role name to look up at the scope. */
  readonly role: string;
  readonly mode: 'pim' | 'assignment';
}

const TARGET_KEYS = [
  'tenantId',
  'clientId',
  'credential',
  'clientSecret',
  'clientCertificate',
  'authorityHost',
  'disableInstanceDiscovery',
  'endpoint',
  'tls',
  'timeoutMs',
  'objectIds',
  'principalType',
] as const;
const ENTITLEMENT_KEYS = ['scope', 'role', 'mode'] as const;
const CREDENTIALS = ['clientSecret', 'clientCertificate', 'managedIdentity', 'default'] as const;
const PRINCIPAL_TYPES = ['User', 'Group', 'ServicePrincipal'] as const;

export const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const DOMAIN = /^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/i;
/** Authority hosts Microsoft's instance discovery knows (public cloud, US Government, China). */
const KNOWN_AUTHORITIES = new Set(['login.microsoftonline.com', 'login.microsoftonline.us', 'login.chinacloudapi.cn', 'login.partner.microsoftonline.cn']);
export const DEFAULT_AUTHORITY = 'https://login.microsoftonline.com';
export const DEFAULT_ENDPOINT = 'https://management.azure.com';
const MAX_PEM = 64 * 1024;
// eslint-disable-next-line no-control-regex -- control characters are exactly what is refused.
const CONTROL = /[\u0000-\u001f\u007f]/;

/**
 * An ARM scope Lapse may assign at: a subscription, a resource group in it, or a resource
 * (`/providers/<namespace>/<type>/<name>`, nested types allowed). Scopes go into request paths
 * unencoded (the SDK does not encode them), so every segment is held to ARM's own name rules and
 * nothing that could change the path's meaning (`..`, `?`, `#`, `%`, spaces) gets through.
 */
export function scopeProblem(value: unknown): string | undefined {
  const example = 'e.g. /subscriptions/<subscription id>/resourceGroups/<group>';
  if (typeof value !== 'string' || value.length === 0 || value.length > 1024) return `must be an Azure scope of up to 1024 characters, ${example}`;
  const parts = value.split('/');
  if (parts[0] !== '' || parts[1]?.toLowerCase() !== 'subscriptions' || !GUID.test(parts[2] ?? ''))
    return `must start with /subscriptions/<subscription id (a GUID)>, ${example}`;
  let i = 3;
  if (parts[i]?.toLowerCase() === 'resourcegroups') {
    const group = parts[i + 1] ?? '';
    if (!/^[-\w.()]{1,90}$/.test(group) || group.endsWith('.'))
      return 'has a resource group name that is not valid (1-90 letters, digits, - _ . ( ), not ending in .)';
    i += 2;
    if (parts[i]?.toLowerCase() === 'providers') {
      if (!/^[A-Za-z][A-Za-z0-9]*(\.[A-Za-z0-9]+)+$/.test(parts[i + 1] ?? ''))
        return 'has a resource provider namespace that is not valid, e.g. Microsoft.Storage';
      const rest = parts.slice(i + 2);
      if (rest.length < 2 || rest.length % 2 !== 0) return 'must name a resource as /providers/<namespace>/<type>/<name>[/<type>/<name>…]';
      for (const segment of rest)
        if (!/^[-\w.()~@!$&*+,;=:]{1,260}$/.test(segment) || /^\.+$/.test(segment))
          return `has a segment "${segment.slice(0, 40)}" that is not a valid resource type or name`;
      return undefined;
    }
  }
  if (parts.length !== i) return `must be a subscription, a resource group or a resource, ${example}; nothing else may follow`;
  return undefined;
}

function urlProblem(value: unknown, where: string, example: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value.length > 2048 || !URL.canParse(value)) return `${where}: must be an https URL, e.g. ${example}`;
  const url = new URL(value);
  if (url.protocol !== 'https:') return `${where}: must be https; Azure SDKs refuse to send tokens over plain http`;
  if (url.username || url.password || url.search || url.hash || (url.pathname !== '/' && url.pathname !== ''))
    return `${where}: must be just https://host[:port], e.g. ${example}`;
  return undefined;
}

export function targetProblems(target: TargetConfig): string[] {
  const where = `targets.${target.name}.settings`;
  const s = target.settings;
  const problems = checkKnownKeys(s, TARGET_KEYS, where);
  if (typeof s.tenantId !== 'string' || !(GUID.test(s.tenantId) || DOMAIN.test(s.tenantId)))
    problems.push(`${where}.tenantId: must be the Entra tenant id (a GUID) or its domain, e.g. contoso.onmicrosoft.com`);
  if (s.clientId !== undefined && (typeof s.clientId !== 'string' || !GUID.test(s.clientId)))
    problems.push(`${where}.clientId: must be the application (client) id, a GUID`);
  if (s.credential !== undefined && !CREDENTIALS.includes(s.credential as never))
    problems.push(`${where}.credential: must be one of ${CREDENTIALS.join(', ')}`);
  if (s.clientSecret !== undefined && (typeof s.clientSecret !== 'string' || s.clientSecret.length === 0 || s.clientSecret.length > 1024))
    problems.push(`${where}.clientSecret: must be a secret reference, e.g. \${env:LAPSE_AZURE_CLIENT_SECRET}`);
  if (
    s.clientCertificate !== undefined &&
    (typeof s.clientCertificate !== 'string' ||
      s.clientCertificate.length > MAX_PEM ||
      !/-----BEGIN (RSA |EC )?PRIVATE KEY-----/.test(s.clientCertificate) ||
      !s.clientCertificate.includes('-----BEGIN CERTIFICATE-----'))
  )
    problems.push(
      `${where}.clientCertificate: must be a PEM file with the private key and the certificate (up to 64 KiB); write \${file:/etc/lapse/azure-app.pem}`,
    );
  const credential = credentialOf(s);
  if (s.clientSecret !== undefined && s.clientCertificate !== undefined) problems.push(`${where}: give clientSecret or clientCertificate, not both`);
  else if (s.credential !== undefined && (s.clientSecret !== undefined || s.clientCertificate !== undefined) && credential !== s.credential)
    problems.push(
      `${where}.credential: "${String(s.credential)}" does not use the ${s.clientSecret !== undefined ? 'clientSecret' : 'clientCertificate'} given; remove one`,
    );
  if ((credential === 'clientSecret' || credential === 'clientCertificate') && s.clientId === undefined)
    problems.push(`${where}.clientId: is required with a ${credential === 'clientSecret' ? 'client secret' : 'client certificate'}`);
  if (credential === 'clientSecret' && s.clientSecret === undefined) problems.push(`${where}.clientSecret: is required with credential: clientSecret`);
  if (credential === 'clientCertificate' && s.clientCertificate === undefined)
    problems.push(`${where}.clientCertificate: is required with credential: clientCertificate`);
  const authority = urlProblem(s.authorityHost, `${where}.authorityHost`, 'https://login.microsoftonline.us');
  if (authority) problems.push(authority);
  if (s.disableInstanceDiscovery !== undefined && typeof s.disableInstanceDiscovery !== 'boolean')
    problems.push(`${where}.disableInstanceDiscovery: must be true or false`);
  else if (
    !authority &&
    typeof s.authorityHost === 'string' &&
    !KNOWN_AUTHORITIES.has(new URL(s.authorityHost).hostname) &&
    s.disableInstanceDiscovery !== true
  )
    problems.push(
      `${where}.disableInstanceDiscovery: must be true with authorityHost ${new URL(s.authorityHost).hostname}, which Microsoft's instance discovery does not know (Azure Stack, AD FS, a private authority)`,
    );
  const endpoint = urlProblem(s.endpoint, `${where}.endpoint`, DEFAULT_ENDPOINT);
  if (endpoint) problems.push(endpoint);
  problems.push(...tlsProblems(s.tls, where));
  const timeout = checkInteger(s.timeoutMs, `${where}.timeoutMs`, 1_000, 120_000);
  if (timeout) problems.push(`${timeout} (milliseconds per request)`);
  if (s.principalType !== undefined && !PRINCIPAL_TYPES.includes(s.principalType as never))
    problems.push(`${where}.principalType: must be one of ${PRINCIPAL_TYPES.join(', ')}`);
  if (s.objectIds !== undefined) {
    if (typeof s.objectIds !== 'object' || s.objectIds === null || Array.isArray(s.objectIds))
      problems.push(`${where}.objectIds: must map principal ids to Entra object ids, e.g. { alice@example.com: 00000000-0000-0000-0000-000000000000 }`);
    else if (Object.keys(s.objectIds).length > 10_000) problems.push(`${where}.objectIds: at most 10000 entries`);
    else
      for (const [principal, id] of Object.entries(s.objectIds))
        if (typeof id !== 'string' || !GUID.test(id)) problems.push(`${where}.objectIds.${principal}: must be the principal's Entra object id, a GUID`);
  }
  for (const entitlement of target.entitlements.values()) problems.push(...entitlementProblems(target, entitlement));
  return problems;
}

function tlsProblems(value: unknown, where: string): string[] {
  if (value === undefined) return [];
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return [`${where}.tls: must be a map with ca`];
  const { ca, ...rest } = value as Record<string, unknown>;
  const problems = Object.keys(rest).map((key) =>
    key === 'insecureSkipVerify'
      ? `${where}.tls.insecureSkipVerify: is not supported for Azure (the SDK has no such switch, and a bearer token must never go to an unverified server); give the private CA as tls.ca`
      : `${where}.tls.${key}: unknown setting; use ca (https is always on)`,
  );
  if (ca !== undefined && (typeof ca !== 'string' || !ca.includes('-----BEGIN CERTIFICATE-----') || ca.length > MAX_PEM))
    problems.push(`${where}.tls.ca: must be a PEM certificate bundle (up to 64 KiB); write \${file:/path/to/ca.pem}`);
  return problems;
}

function entitlementProblems(target: TargetConfig, entitlement: EntitlementConfig): string[] {
  const where = `targets.${target.name}.entitlements.${entitlement.name}.settings`;
  const s = entitlement.settings;
  const problems = checkKnownKeys(s, ENTITLEMENT_KEYS, where);
  const scope = scopeProblem(s.scope);
  if (scope) problems.push(`${where}.scope: ${scope}`);
  if (typeof s.role !== 'string' || s.role.trim() === '' || s.role.length > 1024 || CONTROL.test(s.role))
    problems.push(`${where}.role: must be a role name (e.g. Reader), a role definition GUID or a role definition id`);
  else if (s.role.startsWith('/') && !/^(\/subscriptions\/[0-9a-f-]{36})?\/providers\/Microsoft\.Authorization\/roleDefinitions\/[0-9a-f-]{36}$/i.test(s.role))
    problems.push(`${where}.role: a role definition id looks like /subscriptions/<id>/providers/Microsoft.Authorization/roleDefinitions/<GUID>`);
  if (s.mode !== undefined && s.mode !== 'pim' && s.mode !== 'assignment')
    problems.push(`${where}.mode: must be "pim" (a PIM active assignment with an expiry) or "assignment" (a plain role assignment)`);
  return problems;
}

function credentialOf(s: Readonly<Record<string, unknown>>): AzureTarget['credential'] {
  if (typeof s.credential === 'string' && CREDENTIALS.includes(s.credential as never)) return s.credential as AzureTarget['credential'];
  if (s.clientSecret !== undefined) return 'clientSecret';
  if (s.clientCertificate !== undefined) return 'clientCertificate';
  return 'managedIdentity';
}

export function parseTarget(target: TargetConfig): AzureTarget {
  const problems = targetProblems(target);
  if (problems.length > 0)
    throw new LapseError('config_invalid', problems[0]!, { problems, hint: 'fix the target in lapse.yaml (lapse config validate shows every problem)' });
  const s = target.settings;
  return {
    tenantId: s.tenantId as string,
    clientId: s.clientId as string | undefined,
    credential: credentialOf(s),
    clientSecret: s.clientSecret as string | undefined,
    clientCertificate: s.clientCertificate as string | undefined,
    authorityHost: ((s.authorityHost as string | undefined) ?? DEFAULT_AUTHORITY).replace(/\/$/, ''),
    disableInstanceDiscovery: s.disableInstanceDiscovery === true,
    endpoint: ((s.endpoint as string | undefined) ?? DEFAULT_ENDPOINT).replace(/\/$/, ''),
    ca: (s.tls as { ca?: string } | undefined)?.ca,
    timeoutMs: (s.timeoutMs as number | undefined) ?? 30_000,
    objectIds: (s.objectIds ?? {}) as Record<string, string>,
    principalType: (s.principalType as AzureTarget['principalType'] | undefined) ?? 'User',
  };
}

/** Call after parseTarget (which checks every entitlement). */
export function parseEntitlement(entitlement: EntitlementConfig): AzureEntitlement {
  const s = entitlement.settings;
  return { scope: s.scope as string, role: (s.role as string).trim(), mode: s.mode === 'assignment' ? 'assignment' : 'pim' };
}

/**
 * The Entra object id of a Lapse principal: its entry in `objectIds`, or the principal id itself
 * when that is already an object id (Lapse signs people in with Entra and `usernameClaim: oid`).
 */
export function objectIdOf(target: TargetConfig, settings: AzureTarget, principalId: string): string {
  const mapped = Object.hasOwn(settings.objectIds, principalId) ? settings.objectIds[principalId] : undefined;
  if (mapped) return mapped.toLowerCase();
  if (GUID.test(principalId)) return principalId.toLowerCase();
  throw new LapseError('connector_failed', `azure-rbac target ${target.name}: principal "${principalId.slice(0, 200)}" has no Entra object id`, {
    where: `targets.${target.name}.settings.objectIds`,
    hint: `map it (objectIds: { "${principalId.slice(0, 200)}": <object id> }; az ad user show --id <upn> --query id), or sign people in with Entra ID and auth.oidc.usernameClaim: oid so principal ids are object ids`,
  });
}
