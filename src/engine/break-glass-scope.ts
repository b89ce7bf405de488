import type { EffectiveConfig } from '../config/types.js';
import { matchesEntitlementPattern } from '../domain/policy/index.js';
import { inSubjectSet, type Principal } from '../domain/principal.js';

/** An entitlement a principal may break glass into, as the portal's picker lists it. */
export interface BreakGlassEntitlement {
  readonly target: string;
  readonly entitlement: string;
  readonly description: string;
  readonly connector: string;
}

/**
 * The one rule for what a principal may break glass into: nothing while break-glass is off or when
 * they are not among `breakGlass.subjects`; otherwise every configured entitlement a
 * `breakGlass.entitlements` pattern covers. The API lists it and the break-glass use-case enforces it.
 */
export function breakGlassEntitlements(config: EffectiveConfig, principal: Principal): BreakGlassEntitlement[] {
  const settings = config.breakGlass;
  if (!settings.enabled || !inSubjectSet(principal, settings.subjects)) return [];
  const allowed: BreakGlassEntitlement[] = [];
  for (const target of config.targets.values()) {
    for (const entitlement of target.entitlements.values()) {
      if (settings.entitlements.some((pattern) => matchesEntitlementPattern(pattern, target.name, entitlement.name))) {
        allowed.push({ target: target.name, entitlement: entitlement.name, description: entitlement.description, connector: target.connector });
      }
    }
  }
  return allowed;
}
