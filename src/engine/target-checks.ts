import type { EffectiveConfig, TargetConfig } from '../config/types.js';
import type { ConnectorRegistry } from '../connectors/index.js';
import { isLapseError, LapseError, type ErrorCode } from '../domain/errors.js';
import { withDeadline } from './target-calls.js';

/**
 * Target checks: can Lapse reach each target with the privileges it needs? Every connector's
 * `checkTarget` names what is missing (a privilege, a role, a vhost); this runs it for one target
 * or all, each with a deadline, and never throws for a failing target: the answer is the report.
 * Used by `lapse target check`, `lapse config validate --check-targets`, and `lapse serve` at
 * start and on every reload (results in /readyz and the admin portal).
 */
export interface TargetCheck {
  readonly target: string;
  readonly connector: string;
  readonly ok: boolean;
  /** What is wrong and how to fix it, as the connector said it (names the missing privilege); null when ok. */
  readonly problem: string | null;
  /** The error code of the failure (forbidden: a privilege is missing; connector_failed: unreachable...). */
  readonly code: ErrorCode | null;
  readonly checkedAt: Date;
  readonly durationMs: number;
}

export interface TargetCheckOptions {
  /** Only this target (all when absent); an unknown name is a not_found error. */
  readonly target?: string | undefined;
  /** Deadline per target; default the config's scheduler.connectorTimeout. */
  readonly timeoutMs?: number;
}

export async function checkTargets(config: EffectiveConfig, connectors: ConnectorRegistry, options: TargetCheckOptions = {}): Promise<TargetCheck[]> {
  const targets = selectTargets(config, options.target);
  const timeoutMs = options.timeoutMs ?? config.scheduler.connectorTimeoutMs;
  return Promise.all(targets.map((target) => checkOne(target, connectors, timeoutMs)));
}

function selectTargets(config: EffectiveConfig, name: string | undefined): TargetConfig[] {
  if (name === undefined) return [...config.targets.values()];
  const target = config.targets.get(name);
  if (!target) {
    const known = [...config.targets.keys()];
    throw new LapseError('not_found', `there is no target ${name} in ${config.source}`, {
      where: name,
      hint: known.length > 0 ? `Targets: ${known.join(', ')}.` : 'The config has no targets.',
    });
  }
  return [target];
}

async function checkOne(target: TargetConfig, connectors: ConnectorRegistry, timeoutMs: number): Promise<TargetCheck> {
  const started = Date.now();
  const result = (problem: string | null, code: ErrorCode | null): TargetCheck => ({
    target: target.name,
    connector: target.connector,
    ok: problem === null,
    problem,
    code,
    checkedAt: new Date(),
    durationMs: Date.now() - started,
  });
  const connector = connectors.get(target.connector);
  if (!connector) return result(`unknown connector "${target.connector}" (known: ${connectors.types().join(', ')})`, 'config_invalid');
  // NB. Settings the connector cannot use would only fail the live check with a vaguer message.
  const invalid = connector.validateSettings(target);
  if (invalid.length > 0) return result(invalid.join('; '), 'config_invalid');
  try {
    await withDeadline(timeoutMs, `checking target ${target.name}`, (signal) => connector.checkTarget(target, signal));
    return result(null, null);
  } catch (error) {
    if (isLapseError(error)) return result(error.describe(), error.code);
    return result(error instanceof Error ? error.message : String(error), 'connector_failed');
  }
}
