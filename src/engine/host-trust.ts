import { LapseError } from '../domain/errors.js';
import type { EngineContext } from './context.js';

/** What a target's hosts fetch to trust Lapse's credentials, bound to the target and the connector timeout. */
export interface TargetHostTrust {
  caPublicKey(): Promise<string>;
  revocationList(): Promise<Buffer>;
}

/**
 * The host-trust material of a target whose connector publishes some (ssh); "not found" for any
 * other name, so target names and kinds cannot be probed beyond what the routes already say.
 */
export function hostTrustOf(context: EngineContext, targetName: string, kind: string): TargetHostTrust {
  const config = context.config();
  const target = config.targets.get(targetName);
  const trust = target ? context.connectors.get(target.connector)?.hostTrust : undefined;
  if (!target || !trust) throw new LapseError('not_found', `there is no ${kind} target ${targetName}`, { where: targetName });
  return {
    caPublicKey: () => trust.caPublicKey(target),
    revocationList: () => trust.revocationList(target, AbortSignal.timeout(config.scheduler.connectorTimeoutMs)),
  };
}
