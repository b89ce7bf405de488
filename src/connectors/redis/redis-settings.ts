import { z } from 'zod';
import type { EntitlementConfig, TargetConfig } from '../../config/types.js';
import { LapseError } from '../../domain/errors.js';
import { tlsOptions, validateTls, type TlsSettings } from '../shared/index.js';
import { commandRuleProblem, patternProblem, type AclScope } from './acl-rules.js';

/**
 * Settings of a `redis` target and its entitlements. Objects are strict (a typo is an error) and
 * every value bounded; the password comes from a secret reference the config loader resolved.
 */
const HOST = /^[A-Za-z0-9.:[\]_-]{1,253}$/;

const targetSchema = z
  .object({
    host: z.string().regex(HOST, 'must be a host name or IP address').default('127.0.0.1'),
    port: z
      .number({ error: 'must be a port number from 1 to 65535' })
      .int()
      .min(1, 'must be a port number from 1 to 65535')
      .max(65_535, 'must be a port number from 1 to 65535')
      .default(6379),
    username: z
      .string()
      .min(1)
      .max(128)
      .regex(/^[\x21-\x7e]+$/, 'must be a Redis user name without spaces')
      .default('default'),
    password: z.string().max(4096).optional(),
    // Checked by the shared validateTls (same block as every network connector).
    tls: z.unknown().optional(),
    timeoutMs: z.number().int().min(100, 'must be 100 to 120000 milliseconds').max(120_000, 'must be 100 to 120000 milliseconds').default(10_000),
  })
  .strict();

const patterns = z.array(z.unknown()).max(64).default([]);

const entitlementSchema = z
  .object({
    mode: z
      .literal('ephemeral', { error: 'only "ephemeral" is supported: Redis has no roles to add an existing user to (see docs/connectors/redis.md)' })
      .default('ephemeral'),
    keys: patterns,
    readKeys: patterns,
    writeKeys: patterns,
    channels: patterns,
    commands: z.array(z.unknown()).min(1, 'list at least one command rule, e.g. ["+@read", "-@dangerous"]').max(64),
    allKeys: z.boolean().default(false),
    allChannels: z.boolean().default(false),
    allowDangerousCommands: z.boolean().default(false),
  })
  .strict();

export interface RedisTarget {
  readonly host: string;
  readonly port: number;
  readonly username: string;
  readonly password: string | undefined;
  readonly tls: TlsSettings | undefined;
  readonly timeoutMs: number;
}

export type RedisEntitlement = AclScope;

export function targetProblems(target: TargetConfig): string[] {
  const where = `targets.${target.name}.settings`;
  const parsed = targetSchema.safeParse(target.settings);
  return [...(parsed.success ? [] : describeIssues(where, parsed.error.issues)), ...validateTls(target.settings.tls, where)];
}

export function entitlementProblems(target: TargetConfig, entitlement: EntitlementConfig): string[] {
  const where = `targets.${target.name}.entitlements.${entitlement.name}.settings`;
  const parsed = entitlementSchema.safeParse(entitlement.settings);
  if (!parsed.success) return describeIssues(where, parsed.error.issues);
  const s = parsed.data;
  const problems: string[] = [];
  for (const key of ['keys', 'readKeys', 'writeKeys', 'channels'] as const) {
    s[key].forEach((pattern, i) => {
      const problem = patternProblem(pattern, key === 'channels' ? 'channel' : 'key');
      if (problem) problems.push(`${where}.${key}[${i}]: ${problem}`);
    });
  }
  s.commands.forEach((rule, i) => {
    const problem = commandRuleProblem(rule, s.allowDangerousCommands);
    if (problem) problems.push(`${where}.commands[${i}]: ${problem}`);
  });
  if (!s.allKeys && !s.allChannels && s.keys.length + s.readKeys.length + s.writeKeys.length + s.channels.length === 0) {
    problems.push(`${where}: list the keys (or channels) the entitlement covers, e.g. keys: ["app:*"]; set allKeys: true for every key`);
  }
  return problems;
}

export function parseTarget(target: TargetConfig): RedisTarget {
  const problems = targetProblems(target);
  if (problems.length > 0) throw invalid(problems);
  const { tls, ...rest } = targetSchema.parse(target.settings);
  return { ...rest, password: rest.password, tls: tlsOptions(tls) };
}

export function parseEntitlement(target: TargetConfig, entitlement: EntitlementConfig): RedisEntitlement {
  const problems = entitlementProblems(target, entitlement);
  if (problems.length > 0) throw invalid(problems);
  // Checked by entitlementProblems above: every pattern and rule is a string of the grammar.
  const s = entitlementSchema.parse(entitlement.settings) as z.infer<typeof entitlementSchema> &
    Record<'keys' | 'readKeys' | 'writeKeys' | 'channels' | 'commands', string[]>;
  return {
    keys: s.keys,
    readKeys: s.readKeys,
    writeKeys: s.writeKeys,
    channels: s.channels,
    commands: s.commands,
    allKeys: s.allKeys,
    allChannels: s.allChannels,
  };
}

function invalid(problems: string[]): LapseError {
  return new LapseError('config_invalid', problems[0]!, { problems, hint: 'fix the target in lapse.yaml (lapse config validate shows every problem)' });
}

function describeIssues(where: string, issues: readonly z.core.$ZodIssue[]): string[] {
  return issues.map((issue) => {
    const path = where + issue.path.map((part) => (typeof part === 'number' ? `[${part}]` : `.${String(part)}`)).join('');
    if (issue.code === 'unrecognized_keys')
      return `${path}: unknown setting${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}; see docs/connectors/redis.md for the settings`;
    return `${path}: ${issue.message}`;
  });
}
