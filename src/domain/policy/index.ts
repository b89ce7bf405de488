export * from './types.js';
export { matchesEntitlementPattern, type PolicyDefinition } from './definition.js';
export {
  compileCondition,
  compilePolicies,
  compileTicketPattern,
  MAX_EXPRESSION_LENGTH,
  type PolicySet,
  type CompiledPolicy,
  type CompileOptions,
  type Condition,
  type PolicyLookups,
} from './compile.js';
export * from './facts.js';
export { requestService } from './context.js';
export { evaluatePolicy } from './evaluate.js';
export { explainPolicies, type EntitlementTerms } from './explain.js';
export { isKnownTimezone } from './context.js';
export { candidatePolicies } from './candidates.js';
