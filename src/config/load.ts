import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, type Document } from 'yaml';
import type { z } from 'zod';
import { resolveAuthConfig } from './auth.js';
import { resolveIntegrations } from './integrations.js';
import { resolveIdentity } from './identity.js';
import { resolveNotificationsConfig } from './notifications.js';
import { campaignSettings } from './reviews.js';
import { canonicalJson } from '../domain/canonical-json.js';
import { LapseError } from '../domain/errors.js';
import { compilePolicies, isKnownTimezone, matchesEntitlementPattern, TICKET_SYSTEMS, type PolicyDefinition } from '../domain/policy/index.js';
import { configSchema, targetSchema, type ParsedConfig } from './schema.js';
import { resolveReference, resolveSettings, type SecretContext } from './secrets.js';
import { resolveAuditExport } from './audit-export.js';
import type { EffectiveConfig, TargetConfig } from './types.js';

const MAX_CONFIG_BYTES = 4 * 1024 * 1024;
const TOP_LEVEL_KEYS = [
  'version',
  'identity',
  'roles',
  'targets',
  'policies',
  'breakGlass',
  'audit',
  'secrets',
  'scheduler',
  'reconcile',
  'auth',
  'integrations',
  'notifications',
  'reviews',
];

export interface ConfigCheckOptions {
  /**
   * Checks one target's settings (the connector's validateSettings, and that the connector
   * exists); returns "<path>: what is wrong" problems, reported with the others, each located.
   */
  readonly checkTarget?: (target: TargetConfig) => readonly string[];
}

export async function loadConfigFile(path: string, env: NodeJS.ProcessEnv = process.env, options: ConfigCheckOptions = {}): Promise<EffectiveConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new LapseError('config_invalid', `cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, {
      where: path,
      hint: 'Pass the config with --config or LAPSE_CONFIG; `examples/lapse.yaml` is a starting point.',
    });
  }
  return parseConfig(text, resolve(path), env, options);
}

/** Parses, validates, resolves and compiles a lapse.yaml. Throws one error listing every problem. */
export function parseConfig(text: string, source: string, env: NodeJS.ProcessEnv = process.env, options: ConfigCheckOptions = {}): EffectiveConfig {
  const fail = (problems: string[]): never => {
    throw new LapseError('config_invalid', `${source} is not valid: ${problems.length} problem${problems.length === 1 ? '' : 's'}`, {
      where: source,
      problems,
      hint: 'Fix each problem listed; docs/configuration.md describes every key.',
    });
  };
  if (text.length > MAX_CONFIG_BYTES) fail([`${source}: the file is larger than 4 MiB`]);
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    fail(doc.errors.map((e) => `${source}:${e.linePos?.[0]?.line ?? '?'}:${e.linePos?.[0]?.col ?? '?'}: YAML syntax: ${e.message.split('\n')[0]}`));
  }
  const raw: unknown = doc.toJS({ maxAliasCount: 100 });
  // "path: what is wrong" problems found after the schema, located in the file when reported.
  const problems: string[] = [];
  const located = (list: readonly string[]) => list.map((p) => `${source}:${locateText(doc, lines, p.slice(0, Math.max(0, p.indexOf(': '))))}: ${p}`);
  const secrets: SecretContext = { env, baseDir: dirname(source), problems };
  const checkTarget = (target: TargetConfig) => problems.push(...(options.checkTarget?.(target) ?? []));
  const parsed = configSchema.safeParse(raw ?? {});
  if (!parsed.success) {
    // NB. Every problem in one pass: the targets that are well-formed on their own still get
    // their connector settings checked, so fixing the schema does not reveal a second round.
    const rawTargets = (raw as { targets?: unknown } | null)?.targets;
    if (rawTargets && typeof rawTargets === 'object' && !Array.isArray(rawTargets)) {
      for (const [name, value] of Object.entries(rawTargets)) {
        const one = targetSchema.safeParse(value);
        if (one.success) checkTarget(buildTarget(name, one.data, secrets));
      }
    }
    fail([...parsed.error.issues.map((issue) => describeIssue(issue, doc, lines, source)), ...located(problems)]);
  }
  const config = parsed.data as ParsedConfig;

  const targets = new Map<string, TargetConfig>();
  for (const [name, target] of Object.entries(config.targets)) {
    const built = buildTarget(name, target, secrets);
    targets.set(name, built);
    checkTarget(built);
    problems.push(...checkCheckoutAccounts(built));
  }
  const entitlementIds = [...targets.values()].flatMap((t) => [...t.entitlements.keys()].map((e) => ({ target: t.name, name: e })));
  const checkPatterns = (patterns: readonly string[], where: string) => {
    patterns.forEach((pattern, i) => {
      if (!entitlementIds.some((e) => matchesEntitlementPattern(pattern, e.target, e.name))) {
        problems.push(`${where}[${i}]: "${pattern}" matches no configured entitlement; check the target and entitlement names`);
      }
    });
  };
  const seen = new Set<string>();
  config.policies.forEach((policy, i) => {
    if (seen.has(policy.name)) problems.push(`policies[${i}].name: "${policy.name}" is used by an earlier policy; names must be unique`);
    seen.add(policy.name);
    checkPatterns(policy.entitlements, `policies[${i}] (${policy.name}).entitlements`);
    if (!isKnownTimezone(policy.timezone))
      problems.push(`policies[${i}] (${policy.name}).timezone: "${policy.timezone}" is not an IANA time zone (e.g. UTC, Europe/Berlin)`);
  });
  checkPatterns(config.breakGlass.entitlements, 'breakGlass.entitlements');
  if (config.scheduler.revokeBackoff.min > config.scheduler.revokeBackoff.max) problems.push('scheduler.revokeBackoff: min must not exceed max');
  const provisionBackoff = {
    min: config.scheduler.provisionBackoff?.min ?? config.scheduler.revokeBackoff.min,
    max: config.scheduler.provisionBackoff?.max ?? config.scheduler.revokeBackoff.max,
  };
  if (provisionBackoff.min > provisionBackoff.max) problems.push('scheduler.provisionBackoff: min must not exceed max');
  const signingKeyPem = config.audit.signingKey === undefined ? undefined : resolveReference(config.audit.signingKey, 'audit.signingKey', secrets);
  if (config.audit.signingKey !== undefined && !config.audit.signingKey.startsWith('${')) {
    problems.push('audit.signingKey: give the key as a reference (${file:path} or ${env:NAME}), not inline');
  }
  const secretKeys = [config.secrets.encryptionKey, ...config.secrets.previousEncryptionKeys];
  secretKeys.forEach((value, i) => {
    if (value !== undefined && !value.startsWith('${')) {
      problems.push(
        `secrets.${i === 0 ? 'encryptionKey' : `previousEncryptionKeys[${i - 1}]`}: give the key as a reference (\${file:path} or \${env:NAME}), not inline`,
      );
    }
  });
  const encryptionKey =
    config.secrets.encryptionKey === undefined ? undefined : resolveReference(config.secrets.encryptionKey, 'secrets.encryptionKey', secrets);
  const previousEncryptionKeys = config.secrets.previousEncryptionKeys.map((value, i) =>
    resolveReference(value, `secrets.previousEncryptionKeys[${i}]`, secrets),
  );
  [encryptionKey, ...previousEncryptionKeys].forEach((value, i) => {
    if (!value) return;
    const where = i === 0 ? 'secrets.encryptionKey' : `secrets.previousEncryptionKeys[${i - 1}]`;
    if (Buffer.from(value.trim(), 'base64').length !== 32)
      problems.push(`${where}: must be 32 random bytes in base64; generate one with \`openssl rand -base64 32\``);
  });
  const auditExport = resolveAuditExport(config.audit, secrets);
  const auth = resolveAuthConfig(config.auth, secrets);
  const integrations = resolveIntegrations(config.integrations, secrets);
  const identity = resolveIdentity(config.identity, secrets);
  const notifications = resolveNotificationsConfig(config.notifications, secrets, {
    policies: config.policies.map((p) => p.name),
    entitlements: entitlementIds,
  });
  if (problems.length > 0) fail(located(problems));

  const version = createHash('sha256').update(canonicalJson(raw)).digest('hex');
  const definitions: PolicyDefinition[] = config.policies.map((p) => ({
    name: p.name,
    description: p.description,
    subjects: p.subjects,
    entitlements: p.entitlements,
    timezone: p.timezone,
    duration: { defaultMs: p.duration.default, maxMs: p.duration.max },
    extension: { maxCount: p.extension.maxCount, maxTotalMs: p.extension.maxTotal, requireApproval: p.extension.requireApproval },
    require: {
      justificationMinLength: p.require.justification?.minLength ?? 0,
      ticketPattern: p.require.ticket?.pattern,
      ...(p.require.ticket?.verify
        ? { ticketVerify: { system: p.require.ticket.verify, assignedToRequester: p.require.ticket.assignedToRequester ?? false } }
        : {}),
      mfaMaxAgeMs: p.require.mfa?.maxAge,
    },
    conditions: p.conditions,
    autoApprove: p.autoApprove,
    autoApproveIf: p.autoApproveIf,
    approval: {
      pendingTimeoutMs: p.approval.pendingTimeout,
      stages: p.approval.stages.map((s) => ({ name: s.name, approvers: s.approvers, quorum: s.quorum, ...(s.mfa ? { mfaMaxAgeMs: s.mfa.maxAge } : {}) })),
    },
  }));
  let policies;
  try {
    policies = compilePolicies(definitions, version, {
      oncall: integrations.pagerduty !== undefined || integrations.oncallWebhook !== undefined,
      ticketSystems: TICKET_SYSTEMS.filter((system) => integrations[system] !== undefined),
    });
  } catch (error) {
    if (error instanceof LapseError) fail([`${source}: ${error.details.where ?? ''}: ${error.message}. ${error.details.hint ?? ''}`.trim()]);
    throw error;
  }
  return {
    version,
    source,
    targets,
    policies,
    breakGlass: {
      enabled: config.breakGlass.enabled,
      subjects: config.breakGlass.subjects,
      entitlements: config.breakGlass.entitlements,
      maxDurationMs: config.breakGlass.maxDuration,
      minReasonLength: config.breakGlass.minReasonLength,
    },
    roles: config.roles,
    auth,
    audit: {
      signingKeyPem: signingKeyPem || undefined,
      checkpointEvery: config.audit.checkpointEvery,
      checkpointIntervalMs: config.audit.checkpointInterval,
      export: auditExport,
    },
    secrets: { encryptionKey: encryptionKey || undefined, previousEncryptionKeys },
    scheduler: {
      pollIntervalMs: config.scheduler.pollInterval,
      connectorTimeoutMs: config.scheduler.connectorTimeout,
      provisionAttempts: config.scheduler.provisionAttempts,
      revokeBackoffMinMs: config.scheduler.revokeBackoff.min,
      revokeBackoffMaxMs: config.scheduler.revokeBackoff.max,
      provisionBackoffMinMs: provisionBackoff.min,
      provisionBackoffMaxMs: provisionBackoff.max,
    },
    integrations,
    notifications,
    identity,
    reviews: config.reviews.map((c) => campaignSettings(c)),
    risk: {
      countryDatabase: config.risk.geoip.countryDatabase,
      asnDatabase: config.risk.geoip.asnDatabase,
      trustedDevicePostures: config.risk.devicePosture ? new Set(config.risk.devicePosture.trusted) : undefined,
    },
    alerts: {
      enabled: config.alerts.enabled,
      intervalMs: config.alerts.interval,
      denialBurst: config.alerts.denialBurst,
      signinFailureBurst: config.alerts.signinFailureBurst,
      burstWindowMs: config.alerts.burstWindow,
      revocationOverdueMs: config.alerts.revocationOverdue,
    },
    reconcile: {
      intervalMs: config.reconcile.interval,
      targets: new Map(
        Object.entries(config.targets).map(([name, t]) => [
          name,
          {
            enabled: t.reconcile.enabled ?? config.reconcile.enabled,
            remediate: t.reconcile.remediate,
            intervalMs: t.reconcile.interval ?? config.reconcile.interval,
          },
        ]),
      ),
    },
  };
}

/** One account is lent through one entitlement: two would hand out and rotate one password independently. */
function checkCheckoutAccounts(target: TargetConfig): string[] {
  const first = new Map<string, string>();
  const problems: string[] = [];
  for (const entitlement of target.entitlements.values()) {
    if (!entitlement.checkout) continue;
    const earlier = first.get(entitlement.checkout.account);
    if (earlier === undefined) first.set(entitlement.checkout.account, entitlement.name);
    else
      problems.push(
        `targets.${target.name}.entitlements.${entitlement.name}.checkout.account: account ${JSON.stringify(entitlement.checkout.account)} is already lent by entitlement ${earlier}; one account, one checkout entitlement`,
      );
  }
  return problems;
}

/** One target as the connectors see it, with its secret references resolved. */
function buildTarget(name: string, target: z.output<typeof targetSchema>, secrets: SecretContext): TargetConfig {
  const entitlements = new Map(
    Object.entries(target.entitlements).map(([ename, e]) => [
      ename,
      {
        name: ename,
        target: name,
        description: e.description,
        settings: resolveSettings(e.settings, `targets.${name}.entitlements.${ename}.settings`, secrets) as Record<string, unknown>,
        labels: e.labels,
        ...(e.checkout
          ? {
              checkout: {
                account: e.checkout.account,
                exclusive: e.checkout.exclusive,
                whenCheckedOut: e.checkout.whenCheckedOut ?? 'refuse',
                rotateEveryMs: e.checkout.rotateEvery,
                password: e.checkout.password,
              },
            }
          : {}),
      },
    ]),
  );
  return {
    name,
    connector: target.connector,
    description: target.description,
    settings: resolveSettings(target.settings, `targets.${name}.settings`, secrets) as Record<string, unknown>,
    labels: target.labels,
    entitlements,
  };
}

/**
 * "line:col" of a problem's path written as text ("targets.db.main.settings.port",
 * "policies[0] (sre).entitlements[1]"): the deepest node of the path that exists. Keys may hold
 * dots (target names do), so at each mapping the longest run of segments that is a key wins.
 */
function locateText(doc: Document, lines: LineCounter, pathText: string): string {
  const tokens = [...pathText.replace(/\s*\([^)]*\)/g, '').matchAll(/\[(\d+)\]|([^.[\]]+)/g)].map((m) => (m[1] !== undefined ? Number(m[1]) : m[2]!));
  let node: unknown = doc.contents;
  let range = (node as { range?: [number, number, number] } | null)?.range;
  let at = 0;
  while (at < tokens.length) {
    let next: unknown;
    let used = 0;
    if (isMap(node)) {
      for (let length = tokens.length - at; length > 0 && used === 0; length--) {
        const run = tokens.slice(at, at + length);
        if (run.some((t) => typeof t === 'number')) continue;
        const pair = node.items.find((item) => isPair(item) && isScalar(item.key) && String(item.key.value) === run.join('.'));
        if (pair) {
          next = pair.value ?? pair.key;
          used = length;
        }
      }
    } else if (isSeq(node) && typeof tokens[at] === 'number') {
      next = node.items[tokens[at] as number];
      used = next === undefined ? 0 : 1;
    }
    if (used === 0) break;
    node = next;
    at += used;
    range = (node as { range?: [number, number, number] } | null)?.range ?? range;
  }
  return range ? format(lines.linePos(range[0])) : '1:1';
}

/** "file:line:col: a.b.c: what is wrong" for one zod issue, located in the YAML source. */
function describeIssue(issue: z.core.$ZodIssue, doc: Document, lines: LineCounter, source: string): string {
  const path = issue.path.map((p) => String(p));
  let message = issue.message;
  let at = path;
  if (issue.code === 'unrecognized_keys') {
    const keys = issue.keys;
    const known = knownKeys(path);
    message = keys.map((k) => `unknown key "${k}"${suggest(k, known)}`).join('; ');
    at = [...path, keys[0]!];
  } else if (issue.code === 'invalid_key') {
    message = `"${path.at(-1)}" is not a valid name: ${issue.issues[0]?.message ?? issue.message}`;
  } else if (issue.code === 'invalid_type' && /received undefined/.test(issue.message)) {
    message = `is required (${issue.message.replace(/^Invalid input: /, '')})`;
  }
  const position = locate(doc, at, lines, issue.code === 'unrecognized_keys' || issue.code === 'invalid_key');
  const dotted =
    path.length > 0
      ? path
          .map((p) => (/^\d+$/.test(p) ? `[${p}]` : `.${p}`))
          .join('')
          .replace(/^\./, '')
      : '(top level)';
  return `${source}:${position}: ${dotted}: ${message}`;
}

function locate(doc: Document, path: string[], lines: LineCounter, keyNode: boolean): string {
  for (let depth = path.length; depth >= 0; depth--) {
    const parentPath = path.slice(0, Math.max(0, depth - 1));
    const parent = depth > 0 ? doc.getIn(parentPath, true) : doc.contents;
    if (depth > 0 && isMap(parent)) {
      const pair = parent.items.find((item) => isPair(item) && isScalar(item.key) && String(item.key.value) === path[depth - 1]);
      const node = keyNode && depth === path.length ? pair?.key : (pair?.value ?? pair?.key);
      const range = (node as { range?: [number, number, number] } | undefined)?.range;
      if (range) return format(lines.linePos(range[0]));
    } else {
      const node = depth > 0 ? doc.getIn(path.slice(0, depth), true) : doc.contents;
      const range = (node as { range?: [number, number, number] } | undefined)?.range;
      if (range) return format(lines.linePos(range[0]));
    }
  }
  return '1:1';
}

function format(pos: { line: number; col: number }): string {
  return `${pos.line}:${pos.col}`;
}

function knownKeys(path: string[]): string[] {
  return path.length === 0 ? TOP_LEVEL_KEYS : [];
}

function suggest(key: string, known: string[]): string {
  let best: string | undefined;
  let bestDistance = 3;
  for (const candidate of known) {
    const d = distance(key.toLowerCase(), candidate.toLowerCase());
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best ? ` (did you mean "${best}"?)` : '';
}

function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const current = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = current;
    }
  }
  return row[b.length]!;
}
