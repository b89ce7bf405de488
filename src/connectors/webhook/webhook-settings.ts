import type { EntitlementConfig, TargetConfig } from '../../config/types.js';
import { LapseError } from '../../domain/errors.js';
import { endpoint, endpointProblems, type Endpoint } from './outbound-http.js';

/**
 * Settings of a `webhook` target. The entitlement's settings are not interpreted: they travel to
 * the receiver in every delivery, except `parameters`, which names the request parameters the
 * entitlement accepts.
 */
export interface WebhookTarget {
  readonly endpoint: Endpoint;
  readonly secret: string;
  readonly timeoutMs: number;
  readonly maxAttempts: number;
  /** `grant`: every grant gets its own provision and revoke; `principal`: Lapse counts overlapping grants of one entitlement to one principal. */
  readonly accessKey: 'grant' | 'principal';
}

const KNOWN = new Set(['url', 'secret', 'allowInsecureHttp', 'tls', 'timeoutMs', 'maxAttempts', 'accessKey']);
const MIN_SECRET = 32;
const PARAMETER_NAME = /^[A-Za-z][A-Za-z0-9_]{0,63}$/;

export function targetProblems(target: TargetConfig): string[] {
  const where = `targets.${target.name}.settings`;
  const s = target.settings;
  const problems = Object.keys(s)
    .filter((k) => !KNOWN.has(k))
    .map((k) => `${where}.${k}: unknown setting; use ${[...KNOWN].join(', ')}`);
  problems.push(...endpointProblems(s, where, 'https://access.example.com/lapse'));
  if (typeof s.secret !== 'string' || s.secret.length < MIN_SECRET || s.secret.length > 1024) {
    problems.push(
      `${where}.secret: must be a secret reference to at least ${MIN_SECRET} random characters (e.g. \${env:LAPSE_WEBHOOK_SECRET} holding \`openssl rand -hex 32\`)`,
    );
  }
  if (s.timeoutMs !== undefined && !(Number.isInteger(s.timeoutMs) && (s.timeoutMs as number) >= 100 && (s.timeoutMs as number) <= 120_000)) {
    problems.push(`${where}.timeoutMs: must be a whole number of milliseconds from 100 to 120000 (per attempt)`);
  }
  if (s.maxAttempts !== undefined && !(Number.isInteger(s.maxAttempts) && (s.maxAttempts as number) >= 1 && (s.maxAttempts as number) <= 10)) {
    problems.push(`${where}.maxAttempts: must be a whole number from 1 to 10`);
  }
  if (s.accessKey !== undefined && s.accessKey !== 'grant' && s.accessKey !== 'principal') problems.push(`${where}.accessKey: must be "grant" or "principal"`);
  for (const entitlement of target.entitlements.values()) problems.push(...entitlementProblems(target, entitlement));
  return problems;
}

function entitlementProblems(target: TargetConfig, entitlement: EntitlementConfig): string[] {
  const names = entitlement.settings.parameters;
  if (names === undefined) return [];
  const where = `targets.${target.name}.entitlements.${entitlement.name}.settings.parameters`;
  if (!Array.isArray(names) || names.length > 16 || !names.every((n) => typeof n === 'string' && PARAMETER_NAME.test(n))) {
    return [`${where}: must be a list of up to 16 parameter names (letters, digits, "_"; starting with a letter)`];
  }
  return [];
}

export function acceptedParameters(entitlement: EntitlementConfig): readonly string[] {
  const names = entitlement.settings.parameters;
  return Array.isArray(names) ? (names as string[]) : [];
}

export function parseTarget(target: TargetConfig): WebhookTarget {
  const problems = targetProblems(target);
  if (problems.length > 0)
    throw new LapseError('config_invalid', problems[0]!, { problems, hint: 'fix the target in lapse.yaml (lapse config validate shows every problem)' });
  const s = target.settings;
  return {
    endpoint: endpoint(s, target.name),
    secret: s.secret as string,
    timeoutMs: (s.timeoutMs as number | undefined) ?? 10_000,
    maxAttempts: (s.maxAttempts as number | undefined) ?? 5,
    accessKey: (s.accessKey as 'grant' | 'principal' | undefined) ?? 'grant',
  };
}
