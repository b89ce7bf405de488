import { inSubjectSet, type Principal } from '../principal.js';
import type { CompiledPolicy, PolicySet } from './compile.js';
import { matchesEntitlementPattern } from './definition.js';

/**
 * The policies that may govern a request for target/entitlement by `principal`, in evaluation
 * order (file order): their entitlement patterns match and their subjects include the principal.
 * `conditions` are not evaluated here (they need the request); evaluatePolicy tries them in this
 * order and the first whose conditions hold governs.
 */
export function candidatePolicies(set: PolicySet, target: string, entitlement: string, principal?: Pick<Principal, 'id' | 'groups'>): CompiledPolicy[] {
  return set.policies.filter(
    ({ definition: def }) =>
      def.entitlements.some((pattern) => matchesEntitlementPattern(pattern, target, entitlement)) && (!principal || inSubjectSet(principal, def.subjects)),
  );
}
