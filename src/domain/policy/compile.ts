import { celEnv, isCelError, parse, plan, type CelEnv } from '@bufbuild/cel';
import { RE2JS } from '@bufbuild/re2';
import { LapseError } from '../errors.js';
import type { PolicyDefinition } from './definition.js';

export const MAX_EXPRESSION_LENGTH = 2_000;

/** A compiled CEL expression: call with the bindings, get true, false, or an error message. */
export type Condition = (bindings: Record<string, unknown>) => true | false | { error: string };

export interface CompiledPolicy {
  readonly definition: PolicyDefinition;
  readonly conditions: Condition | undefined;
  readonly autoApproveIf: Condition | undefined;
  readonly ticket: { test(text: string): boolean } | undefined;
  /** Whether evaluation needs the CEL context at all (skipped when the policy has no expressions). */
  readonly usesContext: boolean;
}

export interface PolicySet {
  readonly version: string;
  readonly policies: readonly CompiledPolicy[];
}

/**
 * NB. `matches()` would recompile its pattern on every call; patterns come from config, so a
 * small cache of compiled RE2 matchers (linear time, no catastrophic backtracking) is enough.
 */
function cachingRe2(): { compile(pattern: string): { test(text: string): boolean } } {
  const cache = new Map<string, { test(text: string): boolean }>();
  return {
    compile(pattern) {
      let matcher = cache.get(pattern);
      if (!matcher) {
        const re = RE2JS.compile(pattern);
        matcher = { test: (text) => re.test(text) };
        if (cache.size > 1_000) cache.clear();
        cache.set(pattern, matcher);
      }
      return matcher;
    },
  };
}

function compileExpression(env: CelEnv, source: string, where: string): Condition {
  if (source.length > MAX_EXPRESSION_LENGTH) {
    throw new LapseError('config_invalid', `expression is longer than ${MAX_EXPRESSION_LENGTH} characters`, { where, hint: 'Split the logic across policies.' });
  }
  let evaluate: (bindings: Record<string, unknown>) => unknown;
  try {
    evaluate = plan(env, parse(source)) as (bindings: Record<string, unknown>) => unknown;
  } catch (error) {
    throw new LapseError('config_invalid', `CEL does not parse: ${(error as Error).message.replace(/^<input>:/, 'column ')}`, {
      where,
      hint: 'See docs/policies.md for the CEL context and examples.',
    });
  }
  return (bindings) => {
    const result = evaluate(bindings);
    if (result === true || result === false) return result;
    if (isCelError(result)) return { error: result.message };
    return { error: `expression returned ${typeof result}, not a bool` };
  };
}

export function compileTicketPattern(pattern: string, where: string): { test(text: string): boolean } {
  try {
    const re = RE2JS.compile(pattern);
    return { test: (text) => re.test(text) };
  } catch (error) {
    throw new LapseError('config_invalid', `ticket pattern is not a valid RE2 regular expression: ${(error as Error).message}`, {
      where,
      hint: 'Use RE2 syntax (no backreferences or lookaround), e.g. ^OPS-[0-9]+$.',
    });
  }
}

/** Compiles every expression once per config load; errors name the policy and field. */
export function compilePolicies(definitions: readonly PolicyDefinition[], version: string): PolicySet {
  const env = celEnv({ re2: cachingRe2() });
  const policies = definitions.map((definition, index): CompiledPolicy => {
    const where = (field: string) => `policies[${index}] (${definition.name}).${field}`;
    const conditions = definition.conditions ? compileExpression(env, definition.conditions, where('conditions')) : undefined;
    const autoApproveIf = definition.autoApproveIf ? compileExpression(env, definition.autoApproveIf, where('autoApproveIf')) : undefined;
    const ticket = definition.require.ticketPattern ? compileTicketPattern(definition.require.ticketPattern, where('require.ticket.pattern')) : undefined;
    return { definition, conditions, autoApproveIf, ticket, usesContext: conditions !== undefined || autoApproveIf !== undefined };
  });
  return { version, policies };
}
