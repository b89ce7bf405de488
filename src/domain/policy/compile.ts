import { celEnv, isCelError, parse, plan, type CelEnv } from '@bufbuild/cel';
import { RE2JS } from '@bufbuild/re2';
import { LapseError } from '../errors.js';
import { CONTEXT_VARIABLES } from './context.js';
import type { PolicyDefinition } from './definition.js';
import type { TicketSystem } from './facts.js';

export const MAX_EXPRESSION_LENGTH = 2_000;

/** A compiled CEL expression: call with the bindings, get true, false, or an error message. */
export type Condition = ((bindings: Record<string, unknown>) => true | false | { error: string }) & { readonly variables: ReadonlySet<string> };

export interface CompiledPolicy {
  readonly definition: PolicyDefinition;
  readonly conditions: Condition | undefined;
  readonly autoApproveIf: Condition | undefined;
  readonly ticket: { test(text: string): boolean } | undefined;
  /** Whether evaluation needs the CEL context at all (skipped when the policy has no expressions). */
  readonly usesContext: boolean;
  /**
   * What the engine must look up before this policy can decide: on-call (its expressions read
   * `oncall`), and the ticket system whose facts `ticket.*` reads or `require.ticket.verify` checks.
   */
  readonly lookups: PolicyLookups;
}

export interface PolicyLookups {
  readonly oncall: boolean;
  readonly ticket: TicketSystem | undefined;
}

/** The integrations configured, so a policy reading a fact nobody can supply is a config error. */
export interface CompileOptions {
  readonly oncall: boolean;
  readonly ticketSystems: readonly TicketSystem[];
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
    const policy = variables === CONTEXT_VARIABLES;
    throw new LapseError('config_invalid', `"${name}" is not in the ${policy ? 'policy' : 'expression'} context (it has ${variables.join(', ')})`, {
      where,
      hint: policy ? 'See docs/policies.md for the CEL context.' : 'See docs/notifications.md for the event fields a condition may read.',
    });
  }
  const condition = (bindings: Record<string, unknown>) => {
    const result = evaluate(bindings);
    if (result === true || result === false) return result;
    if (isCelError(result)) return { error: result.message };
    return { error: `expression returned ${typeof result}, not a bool` };
  };
  return Object.assign(condition, { variables: freeIdentifiers(parsed.expr) });
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

const NO_INTEGRATIONS: CompileOptions = { oncall: false, ticketSystems: [] };
/**
 * Compiles a condition over other variables than a policy's (a notification rule's `when` reads
 * `event`), with the same limits, RE2 and error reporting.
 */
export function compileCondition(source: string, where: string, variables: readonly string[]): Condition {
  return compileExpression(celEnv({ re2: cachingRe2() }), source, where, variables);
}

/** Compiles every expression once per config load; errors name the policy and field. */
export function compilePolicies(definitions: readonly PolicyDefinition[], version: string, options: CompileOptions = NO_INTEGRATIONS): PolicySet {
  const env = celEnv({ re2: cachingRe2() });
  const policies = definitions.map((definition, index): CompiledPolicy => {
    const where = (field: string) => `policies[${index}] (${definition.name}).${field}`;
    const conditions = definition.conditions ? compileExpression(env, definition.conditions, where('conditions')) : undefined;
    const autoApproveIf = definition.autoApproveIf ? compileExpression(env, definition.autoApproveIf, where('autoApproveIf')) : undefined;
    const ticket = definition.require.ticketPattern ? compileTicketPattern(definition.require.ticketPattern, where('require.ticket.pattern')) : undefined;
    const lookups = policyLookups(definition, [conditions, autoApproveIf], options, where);
    return { definition, conditions, autoApproveIf, ticket, usesContext: conditions !== undefined || autoApproveIf !== undefined, lookups };
  });
  return { version, policies };
}

/**
 * Which facts a policy needs looked up, decided once at load: a policy that reads `oncall` or
 * `ticket` with no integration able to answer is refused, rather than silently never true.
 */
function policyLookups(
  definition: PolicyDefinition,
  conditions: readonly (Condition | undefined)[],
  options: CompileOptions,
  where: (field: string) => string,
): PolicyLookups {
  const reads = (name: string) => conditions.some((c) => c?.variables.has(name));
  const field = reads('oncall') ? (conditions[0]?.variables.has('oncall') ? 'conditions' : 'autoApproveIf') : '';
  if (field && !options.oncall) {
    throw new LapseError('config_invalid', 'the expression reads oncall.*, but no on-call source is configured', {
      where: where(field),
      hint: 'Configure integrations.pagerduty or integrations.oncallWebhook (docs/integrations.md).',
    });
  }
  const verify = definition.require.ticketVerify?.system;
  if (verify && !options.ticketSystems.includes(verify)) {
    throw new LapseError('config_invalid', `require.ticket.verify names ${verify}, which is not configured`, {
      where: where('require.ticket.verify'),
      hint: `Configure integrations.${verify} (docs/integrations.md), or remove verify.`,
    });
  }
  let ticket = verify;
  if (!ticket && reads('ticket')) {
    const ticketField = conditions[0]?.variables.has('ticket') ? 'conditions' : 'autoApproveIf';
    if (options.ticketSystems.length !== 1) {
      throw new LapseError(
        'config_invalid',
        options.ticketSystems.length === 0
          ? 'the expression reads ticket.*, but no ticket system is configured'
          : 'the expression reads ticket.*, but both Jira and ServiceNow are configured and the policy does not say which',
        {
          where: where(ticketField),
          hint:
            options.ticketSystems.length === 0
              ? 'Configure integrations.jira or integrations.servicenow (docs/integrations.md).'
              : 'Name the system with require.ticket.verify (jira or servicenow).',
        },
      );
    }
    ticket = options.ticketSystems[0];
  }
  return { oncall: field !== '', ticket };
}
