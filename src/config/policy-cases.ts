import { parseDocument } from 'yaml';
import { z } from 'zod';
import { LapseError } from '../domain/errors.js';
import { evaluatePolicy, TICKET_SYSTEMS, uncheckedTicket, type PolicyDecision, type PolicyFacts } from '../domain/policy/index.js';
import { duration } from './schema.js';
import type { EffectiveConfig } from './types.js';
import { boundedText } from '../domain/text.js';
import { assessmentWithSignals, RISK_SIGNALS } from '../domain/risk.js';

/**
 * Policy test cases ("alice asking prod-db/admin for 2h at 03:00 needs 2 approvals"), so policies
 * are tested like code, in review, before they reach production.
 */
const caseSchema = z
  .object({
    name: boundedText(200).min(1),
    principal: z
      .object({ id: boundedText(256).min(1), kind: z.enum(['user', 'service']).default('user'), groups: z.array(boundedText(256)).max(500).default([]) })
      .strict(),
    request: z
      .object({
        entitlement: z
          .string()
          .max(130)
          .regex(/^[^/]+\/[^/]+$/, 'write target/entitlement'),
        duration: duration.optional(),
        reason: boundedText(2000, { multiline: true }).default(''),
        ticket: boundedText(200).optional(),
        mfaAge: duration.optional(),
        kind: z.enum(['access', 'extension']).default('access'),
      })
      .strict(),
    at: z.iso.datetime({ offset: true }).default('2026-01-05T12:00:00Z'),
    /**
     * What the on-call and ticket lookups answer in this case (nothing is called). Omitted: the
     * lookup failed, as when the provider is down (not on call; a verified ticket is unverified).
     */
    facts: z
      .object({
        oncall: z.array(boundedText(63).min(1)).max(100).optional(),
        ticket: z
          .object({
            exists: z.boolean().default(true),
            open: z.boolean().default(true),
            status: boundedText(100).default(''),
            summary: boundedText(500).default(''),
            assignee: boundedText(320).default(''),
            assignedToRequester: z.boolean().default(false),
          })
          .strict()
          .optional(),
      })
      .strict()
      .default({}),
    /**
     * The risk signals the server would have computed for this request (docs/monitoring.md#risk);
     * the score follows from them. Omitted: the neutral score of a person with no history.
     */
    risk: z
      .object({ signals: z.array(z.enum(RISK_SIGNALS)).max(RISK_SIGNALS.length) })
      .strict()
      .optional(),
    expect: z
      .object({
        outcome: z.enum(['approved', 'pending', 'denied']),
        denial: z.string().max(64).optional(),
        policy: z.string().max(63).optional(),
        approvers: z
          .array(z.array(z.string().regex(/^(user|group):.+$/, 'write user:NAME or group:NAME')))
          .max(10)
          .optional(),
        quorum: z.array(z.number().int().min(1)).max(10).optional(),
      })
      .strict(),
  })
  .strict();

const casesFile = z.object({ cases: z.array(caseSchema).min(1).max(10_000) }).strict();

export type PolicyCase = z.output<typeof caseSchema>;

export interface CaseResult {
  readonly name: string;
  readonly passed: boolean;
  readonly expected: Record<string, unknown>;
  readonly actual: Record<string, unknown>;
  readonly reasons: readonly string[];
}

export function parsePolicyCases(text: string, source: string): PolicyCase[] {
  const doc = parseDocument(text, { prettyErrors: true });
  if (doc.errors.length > 0) {
    throw new LapseError('validation_failed', `${source} is not valid YAML`, { where: source, problems: doc.errors.map((e) => e.message.split('\n')[0]) });
  }
  const parsed = casesFile.safeParse(doc.toJS());
  if (!parsed.success) {
    throw new LapseError('validation_failed', `${source} is not a valid policy test file`, {
      where: source,
      problems: parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`),
      hint: 'See docs/policies.md#testing-policies for the case format.',
    });
  }
  return parsed.data.cases;
}

function summarise(decision: PolicyDecision, expected: PolicyCase['expect']): Record<string, unknown> {
  return {
    outcome: decision.outcome,
    ...(expected.denial !== undefined ? { denial: decision.denial?.code ?? null } : {}),
    ...(expected.policy !== undefined ? { policy: decision.policy } : {}),
    ...(expected.approvers !== undefined
      ? { approvers: decision.stages.map((s) => [...s.approvers.users.map((u) => `user:${u}`), ...s.approvers.groups.map((g) => `group:${g}`)]) }
      : {}),
    ...(expected.quorum !== undefined ? { quorum: decision.stages.map((s) => s.quorum) } : {}),
  };
}

/** The facts a case states, as the engine would have looked them up from every configured source. */
function caseFacts(config: EffectiveConfig, testCase: PolicyCase): PolicyFacts {
  const { oncall, ticket } = testCase.facts;
  const source = config.integrations.pagerduty ? 'pagerduty' : 'webhook';
  const key = testCase.request.ticket ?? '';
  const systems = TICKET_SYSTEMS.filter((system) => config.integrations[system] !== undefined);
  return {
    oncall:
      oncall === undefined
        ? { source, checked: false, active: false, services: [], error: 'not stated in the case' }
        : { source, checked: true, active: oncall.length > 0, services: oncall },
    tickets: Object.fromEntries(
      systems.map((system) => [
        system,
        ticket === undefined ? uncheckedTicket(system, key, 'not stated in the case') : { system, key, checked: true, ...ticket },
      ]),
    ),
  };
}

export function runPolicyCases(config: EffectiveConfig, cases: readonly PolicyCase[]): CaseResult[] {
  return cases.map((testCase) => {
    const [target, entitlement] = testCase.request.entitlement.split('/') as [string, string];
    const now = new Date(testCase.at);
    const decision = evaluatePolicy(config.policies, {
      principal: testCase.principal,
      target,
      entitlement,
      durationMs: testCase.request.duration,
      reason: testCase.request.reason,
      ticket: testCase.request.ticket,
      kind: testCase.request.kind,
      ...(testCase.request.kind === 'extension' ? { extension: { count: 0, totalMs: 0 } } : {}),
      client: testCase.request.mfaAge !== undefined ? { mfaAt: new Date(now.getTime() - testCase.request.mfaAge) } : {},
      now,
      labels: {
        target: config.targets.get(target)?.labels ?? {},
        entitlement: config.targets.get(target)?.entitlements.get(entitlement)?.labels ?? {},
      },
      facts: caseFacts(config, testCase),
      ...(testCase.risk ? { risk: assessmentWithSignals(testCase.risk.signals) } : {}),
    });
    const expected = { ...testCase.expect } as Record<string, unknown>;
    const actual = summarise(decision, testCase.expect);
    const passed = JSON.stringify(actual) === JSON.stringify(expected);
    return { name: testCase.name, passed, expected, actual, reasons: decision.reasons };
  });
}
