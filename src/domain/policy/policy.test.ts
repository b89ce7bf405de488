import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../config/index.js';
import { evaluatePolicy, explainPolicies, matchesEntitlementPattern, type PolicyInput } from './index.js';
import { celContext, CONTEXT_VARIABLES } from './context.js';

const CONFIG = parseConfig(
  `version: 1
targets:
  prod-db: { connector: noop, entitlements: { readonly: {}, admin: {} } }
  bastion: { connector: noop, entitlements: { login: {} } }
policies:
  - name: night-only
    subjects: { groups: [night] }
    entitlements: ["prod-db/readonly"]
    timezone: Europe/Berlin
    conditions: "time.hour >= 22 || time.hour < 6"
    autoApprove: true
  - name: readonly
    subjects: { groups: [sre], users: [dana] }
    entitlements: ["*/readonly", "bastion/*"]
    duration: { default: 30m, max: 2h }
    require: { justification: { minLength: 5 }, mfa: { maxAge: 15m } }
    autoApproveIf: 'request.duration <= duration("1h") && request.reason.matches("^INC-[0-9]+")'
    approval:
      stages: [{ name: leads, approvers: { groups: [leads] } }]
  - name: admin
    subjects: { groups: [sre] }
    entitlements: ["prod-db/admin"]
    require: { ticket: { pattern: "^OPS-[0-9]+$" } }
    extension: { maxCount: 1, maxTotal: 3h, requireApproval: false }
    approval:
      pendingTimeout: 2h
      stages:
        - { name: leads, approvers: { groups: [leads] }, quorum: 2 }
        - { name: security, approvers: { users: [carol] } }
  - name: broken-condition
    subjects: { groups: [odd] }
    entitlements: ["prod-db/*"]
    conditions: "principal.nonexistent == 1"
    autoApprove: true
`,
  'policy.test.yaml',
  {},
);

const NOON = new Date('2026-03-02T12:00:00Z');
function input(overrides: Partial<PolicyInput> = {}): PolicyInput {
  return {
    principal: { id: 'alice', kind: 'user', groups: ['sre'] },
    target: 'prod-db',
    entitlement: 'readonly',
    durationMs: undefined,
    reason: 'INC-42 slow queries',
    ticket: undefined,
    kind: 'access',
    client: { mfaAt: new Date(NOON.getTime() - 60_000) },
    now: NOON,
    ...overrides,
  };
}
const decide = (overrides: Partial<PolicyInput> = {}) => evaluatePolicy(CONFIG.policies, input(overrides));

describe('policy evaluation', () => {
  it('auto-approves when autoApproveIf holds, with the default duration and the config version', () => {
    const decision = decide();
    expect(decision).toMatchObject({ outcome: 'approved', policy: 'readonly', durationMs: 30 * 60_000, policyVersion: CONFIG.version });
    expect(decision.reasons).toContain('autoApproveIf true');
  });

  it('falls back to approval stages when autoApproveIf is false', () => {
    const decision = decide({ durationMs: 2 * 3_600_000 });
    expect(decision.outcome).toBe('pending');
    expect(decision.stages.map((s) => s.name)).toEqual(['leads']);
    expect(decision.reasons.join(' ')).toMatch(/autoApproveIf false/);
  });

  it('denies each unmet requirement precisely', () => {
    expect(decide({ durationMs: 3 * 3_600_000 }).denial?.code).toBe('duration_too_long');
    expect(decide({ reason: 'hi' }).denial?.code).toBe('justification_required');
    expect(decide({ client: {} }).denial?.code).toBe('mfa_required');
    expect(decide({ client: { mfaAt: new Date(NOON.getTime() - 16 * 60_000) } }).denial?.code).toBe('mfa_required');
    expect(decide({ entitlement: 'admin' }).denial).toMatchObject({ code: 'ticket_required', hint: 'Give a ticket matching ^OPS-[0-9]+$.' });
    expect(decide({ entitlement: 'admin', ticket: 'OPS-1x' }).denial?.code).toBe('ticket_required');
    expect(decide({ entitlement: 'admin', ticket: 'OPS-17' })).toMatchObject({ outcome: 'pending', pendingTimeoutMs: 2 * 3_600_000 });
  });

  it('says who is not eligible and why', () => {
    const decision = decide({ principal: { id: 'mallory', kind: 'user', groups: ['guests'] } });
    expect(decision).toMatchObject({ outcome: 'denied', policy: null, denial: { code: 'not_eligible' } });
    expect(decision.reasons.some((r) => r.includes('mallory is not among its subjects'))).toBe(true);
  });

  it('evaluates time conditions in the policy time zone', () => {
    const night = { principal: { id: 'nina', kind: 'user' as const, groups: ['night'] } };
    expect(decide({ ...night, now: new Date('2026-03-02T21:30:00Z') }).outcome).toBe('approved'); // 22:30 in Berlin
    expect(decide({ ...night, now: new Date('2026-03-02T12:00:00Z') }).denial?.code).toBe('not_eligible');
  });

  it('treats a condition that errors as false and says so', () => {
    const decision = decide({ principal: { id: 'oscar', kind: 'user', groups: ['odd'] } });
    expect(decision.outcome).toBe('denied');
    expect(decision.reasons.join(' ')).toMatch(/conditions error .* treated as false/);
  });

  it('applies extension limits', () => {
    const ext = (count: number, totalMs: number, durationMs: number) =>
      decide({ entitlement: 'admin', ticket: 'OPS-1', kind: 'extension', durationMs, extension: { count, totalMs } });
    expect(ext(0, 3_600_000, 3_600_000).outcome).toBe('approved');
    expect(ext(1, 3_600_000, 60_000).denial?.code).toBe('extension_limit');
    expect(ext(0, 2.5 * 3_600_000, 3_600_000).denial?.code).toBe('extension_limit');
  });

  it('explains who may get what', () => {
    const all = explainPolicies(CONFIG.policies, [{ target: 'prod-db', name: 'admin' }]);
    expect(all.map((t) => t.policy)).toEqual(['admin', 'broken-condition']);
    expect(all[0]!.approval).toBe('2 of leads (group leads), then 1 of security (user carol)');
    expect(explainPolicies(CONFIG.policies, [{ target: 'bastion', name: 'login' }], { id: 'dana', groups: [] }).map((t) => t.policy)).toEqual(['readonly']);
  });

  it('reads the risk the server computed, and the neutral score when none was', () => {
    expect(Object.keys(celContext(input(), 60_000, 'UTC')).sort()).toEqual([...CONTEXT_VARIABLES].sort());
    const risk = celContext(input(), 60_000, 'UTC').risk as Record<string, unknown>;
    expect(risk).toMatchObject({ score: 30n, noHistory: true, newTarget: false, reasons: ['no history yet: neutral score'] });
    const withRisk = (expression: string) => () =>
      parseConfig(
        `version: 1\ntargets: { db: { connector: noop, entitlements: { ro: {} } } }\npolicies:\n  - { name: p, subjects: { groups: [sre] }, entitlements: ["db/ro"], autoApproveIf: '${expression}' }\n`,
        'risk.yaml',
        {},
      );
    expect(withRisk('risk.score < 50 && !risk.newTarget && "x" in risk.reasons')).not.toThrow();
    // Names a comprehension binds are not context variables; a typo of a real one is caught too.
    expect(withRisk('principal.groups.exists(g, g == "sre")')).not.toThrow();
    expect(withRisk('principle.id == "alice"')).toThrow(
      expect.objectContaining({
        details: expect.objectContaining({ problems: [expect.stringMatching(/"principle" is not in the policy context \(it has principal, /)] }),
      }),
    );
  });

  it('matches entitlement patterns', () => {
    expect(matchesEntitlementPattern('*', 'a', 'b')).toBe(true);
    expect(matchesEntitlementPattern('a/*', 'a', 'b')).toBe(true);
    expect(matchesEntitlementPattern('*/b', 'x', 'b')).toBe(true);
    expect(matchesEntitlementPattern('a/b', 'a', 'c')).toBe(false);
    expect(matchesEntitlementPattern('a*', 'ab', 'c')).toBe(false);
  });
});

describe('policy evaluation (property)', () => {
  const groups = fc.subarray(['sre', 'leads', 'night', 'guests', 'odd']);
  const arb = fc.record({
    id: fc.constantFrom('alice', 'dana', 'mallory', 'carol'),
    groups,
    entitlement: fc.constantFrom(['prod-db', 'readonly'], ['prod-db', 'admin'], ['bastion', 'login']),
    durationMs: fc.option(fc.integer({ min: 1, max: 10 * 3_600_000 }), { nil: undefined }),
    reason: fc.string({ maxLength: 30 }),
    ticket: fc.option(fc.constantFrom('OPS-1', 'nope', ''), { nil: undefined }),
    hour: fc.integer({ min: 0, max: 23 }),
  });

  it('never approves someone outside every subject set, nor beyond the maximum duration, and is deterministic', () => {
    fc.assert(
      fc.property(arb, (a) => {
        const request = input({
          principal: { id: a.id, kind: 'user', groups: a.groups },
          target: a.entitlement[0],
          entitlement: a.entitlement[1],
          durationMs: a.durationMs,
          reason: a.reason,
          ticket: a.ticket,
          now: new Date(Date.UTC(2026, 2, 2, a.hour)),
        });
        const decision = evaluatePolicy(CONFIG.policies, request);
        expect(evaluatePolicy(CONFIG.policies, request)).toEqual(decision);
        const eligible = CONFIG.policies.policies.some(
          (p) => p.definition.subjects.users.includes(a.id) || p.definition.subjects.groups.some((g) => a.groups.includes(g)),
        );
        if (!eligible) expect(decision.outcome).toBe('denied');
        if (decision.outcome !== 'denied') {
          const policy = CONFIG.policies.policies.find((p) => p.definition.name === decision.policy)!;
          expect(decision.durationMs).toBeLessThanOrEqual(policy.definition.duration.maxMs);
          expect(decision.policyVersion).toBe(CONFIG.version);
        }
        if (decision.outcome === 'pending') expect(decision.stages.length).toBeGreaterThan(0);
      }),
      { numRuns: 2000 },
    );
  });
});
