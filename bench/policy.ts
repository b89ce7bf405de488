import { parseConfig } from '../src/config/index.js';
import { evaluatePolicy } from '../src/domain/policy/index.js';
import { summarise, type BenchResult } from './stats.js';

const CONFIG = `
version: 1
targets:
  prod-db:
    connector: noop
    entitlements: { readonly: {}, admin: {} }
policies:
  - name: decoy
    subjects: { groups: [nobody] }
    entitlements: ["prod-db/*"]
    autoApprove: true
  - name: sre
    subjects: { groups: [sre] }
    entitlements: ["prod-db/*"]
    duration: { default: 1h, max: 8h }
    conditions: >-
      "sre" in principal.groups && time.hour >= 0 && request.duration <= duration("4h")
      && request.reason.matches("^[A-Za-z].*") && client.mfaAgeSeconds < 3600
    autoApprove: true
`;

/** Policy decision latency: first-match evaluation through a 5-clause CEL condition. */
export function benchPolicyDecision(count: number): BenchResult {
  const { policies } = parseConfig(CONFIG, 'bench-policy.yaml', {});
  const now = new Date('2026-06-01T10:00:00Z');
  const input = {
    principal: { id: 'alice', kind: 'user' as const, groups: ['sre', 'oncall'] },
    target: 'prod-db',
    entitlement: 'readonly',
    durationMs: 3_600_000,
    reason: 'Investigating INC-1',
    ticket: undefined,
    kind: 'access' as const,
    client: { mfaAt: new Date(now.getTime() - 60_000) },
    now,
  };
  for (let i = 0; i < 2_000; i++) evaluatePolicy(policies, input); // warm up the JIT
  const latencies = new Array<number>(count);
  const started = performance.now();
  for (let i = 0; i < count; i++) {
    const t0 = performance.now();
    const decision = evaluatePolicy(policies, input);
    latencies[i] = performance.now() - t0;
    if (decision.outcome !== 'approved') throw new Error(`policy bench: unexpected ${decision.outcome}: ${decision.reasons.join('; ')}`);
  }
  return summarise('policy_decision', 'none', latencies, performance.now() - started);
}
