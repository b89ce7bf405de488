import type { EntitlementConfig, TargetConfig } from '../../config/types.js';
import { LapseError } from '../../domain/errors.js';
import { connectorEntitlements } from '../types.js';
import { endpoint, endpointProblems, type Endpoint } from '../webhook/index.js';

/** Settings of a `rabbitmq` target (its management API) and of its entitlements (vhost permissions). */
export interface RabbitTarget {
  readonly endpoint: Endpoint;
  readonly username: string;
  readonly password: string;
  readonly timeoutMs: number;
  /** Where requesters connect with AMQP (a hint returned with credentials), e.g. amqps://mq.example.com:5671. */
  readonly amqpUrl: string | undefined;
  /** Elevate mode: principal id -> existing RabbitMQ user (default: the principal id itself). */
  readonly accounts: Readonly<Record<string, string>>;
}

export interface Permissions {
  readonly configure: string;
  readonly write: string;
  readonly read: string;
}

export interface RabbitEntitlement {
  readonly mode: 'ephemeral' | 'elevate';
  readonly vhost: string;
  readonly permissions: Permissions;
  /** User tags for ephemeral users (management UI access, etc.). */
  readonly tags: readonly string[];
}

const TARGET_KEYS = new Set(['url', 'username', 'password', 'allowInsecureHttp', 'tls', 'timeoutMs', 'amqpUrl', 'accounts']);
const ENTITLEMENT_KEYS = new Set(['mode', 'vhost', 'configure', 'write', 'read', 'tags', 'allowAdministrator']);
const TAGS = new Set(['management', 'policymaker', 'monitoring', 'administrator', 'impersonator']);
/** Tags that let the user manage the broker or act as others: only with `allowAdministrator: true`. */
const POWERFUL_TAGS = new Set(['administrator', 'impersonator']);
// eslint-disable-next-line no-control-regex -- control characters are exactly what is refused.
const CONTROL = /[\u0000-\u001f\u007f]/;

function nameProblem(value: unknown, max: number): string | undefined {
  if (typeof value !== 'string' || value.length === 0) return 'must be a non-empty name';
  if (value.length > max) return `must be at most ${max} characters`;
  if (CONTROL.test(value)) return 'contains a control character; remove it';
  if (value === '.' || value === '..') return `"${value}" cannot be addressed through the management API; rename it`;
  return undefined;
}

export function targetProblems(target: TargetConfig): string[] {
  const where = `targets.${target.name}.settings`;
  const s = target.settings;
  const problems = Object.keys(s)
    .filter((k) => !TARGET_KEYS.has(k))
    .map((k) => `${where}.${k}: unknown setting; use ${[...TARGET_KEYS].join(', ')}`);
  problems.push(...endpointProblems(s, where, 'https://mq.example.com:15671'));
  const user = nameProblem(s.username, 255);
  if (user) problems.push(`${where}.username: ${user} (Lapse's own management user, tagged administrator)`);
  if (typeof s.password !== 'string' || s.password === '' || s.password.length > 1024)
    problems.push(`${where}.password: must be a secret reference, e.g. \${env:RABBITMQ_LAPSE_PASSWORD}`);
  if (s.timeoutMs !== undefined && !(Number.isInteger(s.timeoutMs) && (s.timeoutMs as number) >= 100 && (s.timeoutMs as number) <= 120_000)) {
    problems.push(`${where}.timeoutMs: must be a whole number of milliseconds from 100 to 120000`);
  }
  if (s.amqpUrl !== undefined) {
    const ok = typeof s.amqpUrl === 'string' && s.amqpUrl.length <= 2048 && URL.canParse(s.amqpUrl) && /^amqps?:$/.test(new URL(s.amqpUrl).protocol);
    if (!ok) problems.push(`${where}.amqpUrl: must be an amqp:// or amqps:// URL, e.g. amqps://mq.example.com:5671`);
    else if (new URL(s.amqpUrl as string).username || new URL(s.amqpUrl as string).password) problems.push(`${where}.amqpUrl: must not carry credentials`);
  }
  if (s.accounts !== undefined) {
    if (typeof s.accounts !== 'object' || s.accounts === null || Array.isArray(s.accounts))
      problems.push(`${where}.accounts: must map principal ids to RabbitMQ users, e.g. { alice: alice_ops }`);
    else
      for (const [principal, account] of Object.entries(s.accounts)) {
        const problem = nameProblem(account, 255);
        if (problem) problems.push(`${where}.accounts.${principal}: ${problem}`);
      }
  }
  for (const entitlement of connectorEntitlements(target)) problems.push(...entitlementProblems(target, entitlement));
  return problems;
}

function entitlementProblems(target: TargetConfig, entitlement: EntitlementConfig): string[] {
  const where = `targets.${target.name}.entitlements.${entitlement.name}.settings`;
  const s = entitlement.settings;
  const problems = Object.keys(s)
    .filter((k) => !ENTITLEMENT_KEYS.has(k))
    .map((k) => `${where}.${k}: unknown setting; use ${[...ENTITLEMENT_KEYS].join(', ')}`);
  if (s.mode !== undefined && s.mode !== 'ephemeral' && s.mode !== 'elevate') problems.push(`${where}.mode: must be "ephemeral" or "elevate"`);
  const vhost = nameProblem(s.vhost, 255);
  if (vhost) problems.push(`${where}.vhost: ${vhost} (the virtual host the permissions apply to, e.g. "/")`);
  for (const kind of ['configure', 'write', 'read'] as const) {
    const value = s[kind];
    if (value !== undefined && (typeof value !== 'string' || value.length > 1024 || CONTROL.test(value))) {
      problems.push(`${where}.${kind}: must be a regular expression of resource names (up to 1024 characters), e.g. "^orders\\\\." ; "" grants nothing`);
    }
  }
  if (['configure', 'write', 'read'].every((k) => s[k] === undefined || s[k] === '')) {
    problems.push(`${where}: grant at least one of configure, write or read (regular expressions of resource names, ".*" for all)`);
  }
  if (s.allowAdministrator !== undefined && typeof s.allowAdministrator !== 'boolean') problems.push(`${where}.allowAdministrator: must be true or false`);
  if (s.tags !== undefined) {
    if (s.mode === 'elevate') problems.push(`${where}.tags: only ephemeral users get tags; an existing user keeps its own`);
    else if (!Array.isArray(s.tags) || s.tags.length > 5) problems.push(`${where}.tags: must be a list of user tags (${[...TAGS].join(', ')})`);
    else
      s.tags.forEach((tag, i) => {
        if (typeof tag !== 'string' || !TAGS.has(tag)) problems.push(`${where}.tags[${i}]: must be one of ${[...TAGS].join(', ')}`);
        else if (POWERFUL_TAGS.has(tag) && s.allowAdministrator !== true)
          problems.push(`${where}.tags[${i}]: "${tag}" lets the user run the broker; set allowAdministrator: true if that is really meant`);
      });
  }
  return problems;
}

export function parseTarget(target: TargetConfig): RabbitTarget {
  const problems = targetProblems(target);
  if (problems.length > 0)
    throw new LapseError('config_invalid', problems[0]!, { problems, hint: 'fix the target in lapse.yaml (lapse config validate shows every problem)' });
  const s = target.settings;
  return {
    endpoint: endpoint(s, target.name),
    username: s.username as string,
    password: s.password as string,
    timeoutMs: (s.timeoutMs as number | undefined) ?? 10_000,
    amqpUrl: s.amqpUrl as string | undefined,
    accounts: (s.accounts ?? {}) as Record<string, string>,
  };
}

/** Call after parseTarget (which checks every entitlement). */
export function parseEntitlement(entitlement: EntitlementConfig): RabbitEntitlement {
  const s = entitlement.settings;
  return {
    mode: s.mode === 'elevate' ? 'elevate' : 'ephemeral',
    vhost: s.vhost as string,
    permissions: {
      configure: (s.configure as string | undefined) ?? '',
      write: (s.write as string | undefined) ?? '',
      read: (s.read as string | undefined) ?? '',
    },
    tags: (s.tags as string[] | undefined) ?? [],
  };
}
