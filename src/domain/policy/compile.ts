import { celEnv, isCelError, parse, plan, type CelEnv } from '@bufbuild/cel';
import { RE2JS } from '@bufbuild/re2';
import { LapseError } from '../errors.js';
import { CONTEXT_VARIABLES } from './context.js';
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

function compileExpression(env: CelEnv, source: string, where: string, variables: readonly string[] = CONTEXT_VARIABLES): Condition {
  if (source.length > MAX_EXPRESSION_LENGTH) {
    throw new LapseError('config_invalid', `expression is longer than ${MAX_EXPRESSION_LENGTH} characters`, {
      where,
      hint: 'Split the logic across policies.',
    });
  }
  let evaluate: (bindings: Record<string, unknown>) => unknown;
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(source);
    evaluate = plan(env, parsed) as (bindings: Record<string, unknown>) => unknown;
  } catch (error) {
    throw new LapseError('config_invalid', `CEL does not parse: ${(error as Error).message.replace(/^<input>:/, 'column ')}`, {
      where,
      hint: 'See docs/policies.md for the CEL context and examples.',
    });
  }
  for (const name of freeIdentifiers(parsed.expr)) {
    if (variables.includes(name) || CEL_TYPE_NAMES.has(name)) continue;
    const risk = name === 'risk' ? ': Lapse computes no risk score yet, and one supplied with the request would be chosen by the requester' : '';
    const policy = variables === CONTEXT_VARIABLES;
    throw new LapseError('config_invalid', `"${name}" is not in the ${policy ? 'policy' : 'expression'} context (it has ${variables.join(', ')})${risk}`, {
      where,
      hint: policy ? 'See docs/policies.md for the CEL context.' : 'See docs/notifications.md for the event fields a condition may read.',
    });
  }
  return (bindings) => {
    const result = evaluate(bindings);
    if (result === true || result === false) return result;
    if (isCelError(result)) return { error: result.message };
    return { error: `expression returned ${typeof result}, not a bool` };
  };
}

/** Type names an expression may mention as values (`type(x) == int`), and the protobuf namespace. */
const CEL_TYPE_NAMES = new Set(['int', 'uint', 'double', 'bool', 'string', 'bytes', 'list', 'map', 'null_type', 'type', 'dyn', 'google']);

type CelExpr = ReturnType<typeof parse>['expr'] | undefined;

/**
 * The variables an expression reads from its context: identifiers not bound by a macro's
 * comprehension (`exists(g, ...)` binds g; the accumulator is internal).
 */
function freeIdentifiers(expr: CelExpr, bound: ReadonlySet<string> = new Set(), found = new Set<string>()): Set<string> {
  if (!expr) return found;
  const kind = expr.exprKind;
  switch (kind.case) {
    case 'identExpr':
      if (!bound.has(kind.value.name)) found.add(kind.value.name);
      break;
    case 'selectExpr':
      freeIdentifiers(kind.value.operand, bound, found);
      break;
    case 'callExpr':
      freeIdentifiers(kind.value.target, bound, found);
      for (const arg of kind.value.args) freeIdentifiers(arg, bound, found);
      break;
    case 'listExpr':
      for (const element of kind.value.elements) freeIdentifiers(element, bound, found);
      break;
    case 'structExpr':
      for (const entry of kind.value.entries) {
        if (entry.keyKind.case === 'mapKey') freeIdentifiers(entry.keyKind.value, bound, found);
        freeIdentifiers(entry.value, bound, found);
      }
      break;
    case 'comprehensionExpr': {
      const c = kind.value;
      freeIdentifiers(c.iterRange, bound, found);
      freeIdentifiers(c.accuInit, bound, found);
      const inner = new Set([...bound, c.iterVar, c.iterVar2, c.accuVar].filter((name) => name !== ''));
      freeIdentifiers(c.loopCondition, inner, found);
      freeIdentifiers(c.loopStep, inner, found);
      freeIdentifiers(c.result, inner, found);
      break;
    }
    default:
      break;
  }
  return found;
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

/**
 * Compiles a condition over other variables than a policy's (a notification rule's `when` reads
 * `event`), with the same limits, RE2 and error reporting.
 */
export function compileCondition(source: string, where: string, variables: readonly string[]): Condition {
  return compileExpression(celEnv({ re2: cachingRe2() }), source, where, variables);
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
