import { describe, expect, it } from 'vitest';
import { parseConfig, parsePolicyCases, runPolicyCases } from '../../config/index.js';
import { isLapseError } from '../errors.js';
import { evaluatePolicy, explainPolicies, type OncallFact, type PolicyInput, type TicketFact } from './index.js';

const ENV = { PD_TOKEN: 'pd-token', JIRA_TOKEN: 'jira-token', SN_PASSWORD: 'sn-password' };
const INTEGRATIONS = `
integrations:
  pagerduty:
    token: \${env:PD_TOKEN}
    services:
      checkout: { escalationPolicies: [PEP1] }
  jira:
    url: https://example.atlassian.net
    email: lapse@example.com
    apiToken: \${env:JIRA_TOKEN}
`;
const TARGETS = `
version: 1
targets:
  shop-db:
    connector: noop
    labels: { service: checkout }
    entitlements: { readonly: {}, admin: {} }
  ledger-db:
    connector: noop
    labels: { service: ledger }
    entitlements: { readonly: {} }
`;
const POLICIES = `
policies:
  - name: oncall-readonly
    subjects: { groups: [sre] }
    entitlements: ["*/readonly"]
    autoApproveIf: oncall.forTarget
    approval: { stages: [{ name: leads, approvers: { groups: [leads] } }] }
  - name: admin-with-ticket
    subjects: { groups: [sre] }
    entitlements: ["shop-db/admin"]
    require: { ticket: { pattern: "^OPS-[0-9]+$", verify: jira, assignedToRequester: true } }
    autoApproveIf: ticket.status == "In Progress" && "checkout" in oncall.services
    approval: { stages: [{ name: leads, approvers: { groups: [leads] } }] }
`;
const config = parseConfig(TARGETS + INTEGRATIONS + POLICIES, 'facts.test.yaml', ENV);

/** Every problem a config (after the targets) has, one per line, or "" when it loads. */
function problemsOf(yaml: string, env: Record<string, string> = ENV): string {
  try {
    parseConfig(TARGETS + yaml, 'x.yaml', env);
    return '';
  } catch (error) {
    return isLapseError(error) ? (error.details.problems as string[]).join('\n') : String(error);
  }
}

const NOW = new Date('2026-03-02T12:00:00Z');
const labelsOf = (target: string, entitlement: string) => {
  const t = config.targets.get(target)!;
  return { target: t.labels, entitlement: t.entitlements.get(entitlement)!.labels };
};
function input(overrides: Partial<PolicyInput> & { target?: string; entitlement?: string } = {}): PolicyInput {
  const target = overrides.target ?? 'shop-db';
  const entitlement = overrides.entitlement ?? 'readonly';
  return {
    principal: { id: 'alice', kind: 'user', groups: ['sre'] },
    target,
    entitlement,
    durationMs: undefined,
    reason: 'look at the checkout queue',
    ticket: undefined,
    kind: 'access',
    client: {},
    now: NOW,
    labels: labelsOf(target, entitlement),
    ...overrides,
  };
}
const oncall = (services: string[], extra: Partial<OncallFact> = {}): OncallFact => ({
  source: 'pagerduty',
  checked: true,
  active: services.length > 0,
  services,
  ...extra,
});
const ticket = (extra: Partial<TicketFact> = {}): TicketFact => ({
  system: 'jira',
  key: 'OPS-1',
  checked: true,
  exists: true,
  open: true,
  status: 'In Progress',
  summary: 'checkout is slow',
  assignee: 'alice@example.com',
  assignedToRequester: true,
  ...extra,
});

describe('on-call as a policy input', () => {
  it('auto-approves an engineer on call for the service the target is labelled with, and only that service', () => {
    const approved = evaluatePolicy(config.policies, input({ facts: { oncall: oncall(['checkout']) } }));
    expect(approved.outcome).toBe('approved');
    expect(approved.reasons).toContain('on-call (pagerduty): on call for checkout');

    const otherService = evaluatePolicy(config.policies, input({ target: 'ledger-db', facts: { oncall: oncall(['checkout']) } }));
    expect(otherService.outcome).toBe('pending');
  });

  it('treats no facts, an off-call answer and a failed lookup alike: not on call, so approval', () => {
    expect(evaluatePolicy(config.policies, input()).outcome).toBe('pending');
    expect(evaluatePolicy(config.policies, input({ facts: { oncall: oncall([]) } })).outcome).toBe('pending');
    const failed = evaluatePolicy(config.policies, input({ facts: { oncall: oncall([], { checked: false, error: 'no answer within 2000 ms' }) } }));
    expect(failed.outcome).toBe('pending');
    expect(failed.reasons).toContain('on-call (pagerduty): lookup failed (no answer within 2000 ms), treated as not on call');
  });

  it('refuses at load a policy that reads oncall when no on-call source is configured', () => {
    expect(problemsOf(POLICIES.split('  - name: admin-with-ticket')[0]!)).toMatch(
      /policies\[0\] \(oncall-readonly\)\.autoApproveIf: the expression reads oncall\.\*, but no on-call source is configured/,
    );
  });

  it('refuses two on-call sources', () => {
    const both = `${INTEGRATIONS}  oncallWebhook: { url: https://oncall.example.com/lapse, secret: "\${env:PD_TOKEN}" }\n`;
    expect(problemsOf(both)).toMatch(/integrations\.oncallWebhook: configure one on-call source: pagerduty or oncallWebhook/);
  });
});

describe('ticket checks', () => {
  const admin = (facts: PolicyInput['facts'], ticketKey = 'OPS-1') =>
    evaluatePolicy(config.policies, input({ entitlement: 'admin', ticket: ticketKey, facts }));

  it('passes an open ticket assigned to the requester and lets CEL read its status', () => {
    expect(admin({ tickets: { jira: ticket() }, oncall: oncall(['checkout']) }).outcome).toBe('approved');
    expect(admin({ tickets: { jira: ticket({ status: 'Selected' }) }, oncall: oncall(['checkout']) }).outcome).toBe('pending');
  });

  it.each([
    ['a missing ticket', ticket({ exists: false, open: false, status: '' }), 'ticket_not_found', /ticket OPS-1 does not exist in Jira/],
    [
      'a closed ticket',
      ticket({ open: false, status: 'Done' }),
      'ticket_closed',
      /ticket OPS-1 is "Done" in Jira; policy admin-with-ticket needs an open ticket/,
    ],
    [
      'someone else’s ticket',
      ticket({ assignedToRequester: false, assignee: 'bob@example.com' }),
      'ticket_not_assigned',
      /assigned to bob@example.com, not to alice/,
    ],
    ['a failed lookup', ticket({ checked: false, exists: false, error: 'HTTP 503' }), 'ticket_unverified', /Jira could not be asked: HTTP 503/],
  ])('refuses %s with a clear reason', (_what, fact, code, message) => {
    const decision = admin({ tickets: { jira: fact } });
    expect(decision.outcome).toBe('denied');
    expect(decision.denial?.code).toBe(code);
    expect(decision.denial?.message).toMatch(message);
  });

  it('refuses as unverified when the engine looked nothing up (never fails open)', () => {
    expect(admin(undefined).denial?.code).toBe('ticket_unverified');
  });

  it('checks the pattern before the lookup', () => {
    expect(admin({ tickets: { jira: ticket() } }, 'nonsense').denial?.code).toBe('ticket_required');
  });

  it('refuses at load: ticket.* with no ticket system, verify naming an unconfigured one, assignedToRequester without verify', () => {
    const reads = `policies:\n  - { name: p, subjects: { groups: [sre] }, entitlements: ["*/readonly"], autoApproveIf: ticket.open }\n`;
    expect(problemsOf(reads)).toMatch(/reads ticket\.\*, but no ticket system is configured/);
    const verify = `${INTEGRATIONS}policies:\n  - { name: p, subjects: { groups: [sre] }, entitlements: ["*/readonly"], require: { ticket: { pattern: "^X", verify: servicenow } }, autoApprove: true }\n`;
    expect(problemsOf(verify)).toMatch(/require.ticket.verify names servicenow, which is not configured/);
    const assigned = `policies:\n  - { name: p, subjects: { groups: [sre] }, entitlements: ["*/readonly"], require: { ticket: { pattern: "^X", assignedToRequester: true } }, autoApprove: true }\n`;
    expect(problemsOf(assigned)).toMatch(/require\.ticket\.assignedToRequester: assignedToRequester needs verify/);
  });
});

describe('integrations config', () => {
  it('refuses literal secrets, plain http to another host, unset references and out-of-range timeouts', () => {
    const problems = problemsOf(`
integrations:
  pagerduty: { token: literal-token, apiUrl: http://pd.example.com, timeout: 1m, services: { checkout: { schedules: [PS1] } } }
  jira: { url: https://x.atlassian.net, email: a@example.com, apiToken: "\${env:MISSING}" }
`);
    expect(problems).toMatch(/integrations\.pagerduty\.timeout: timeout must be between 100 ms and 10 s/);
    const second = problemsOf(`
integrations:
  pagerduty: { token: literal-token, apiUrl: http://pd.example.com, services: { checkout: { schedules: [PS1] } } }
  jira: { url: https://x.atlassian.net, email: a@example.com, apiToken: "\${env:MISSING}" }
`);
    expect(second).toMatch(/integrations\.pagerduty\.token: give the secret as a reference/);
    expect(second).toMatch(/integrations\.pagerduty\.apiUrl: "http:\/\/pd\.example\.com" is plain http/);
    expect(second).toMatch(/integrations\.jira\.apiToken: environment variable MISSING is not set/);
    expect(second).not.toMatch(/literal-token/);
  });

  it('needs ServiceNow credentials of exactly one kind and a long enough webhook secret', () => {
    expect(problemsOf(`integrations:\n  servicenow: { url: https://x.service-now.com, username: lapse }\n`)).toMatch(
      /basic auth needs both username and password/,
    );
    expect(
      problemsOf(
        `integrations:\n  servicenow: { url: https://x.service-now.com, username: u, password: "\${env:SN_PASSWORD}", token: "\${env:SN_PASSWORD}" }\n`,
      ),
    ).toMatch(/either username and password .* or token/);
    expect(problemsOf(`integrations:\n  oncallWebhook: { url: https://oncall.example.com, secret: "\${env:PD_TOKEN}" }\n`)).toMatch(
      /oncallWebhook\.secret: must be at least 32 random characters/,
    );
  });

  it('shows in explain which facts a policy looks up and what the ticket must be', () => {
    const terms = explainPolicies(config.policies, [
      { target: 'shop-db', name: 'readonly' },
      { target: 'shop-db', name: 'admin' },
    ]);
    expect(terms.map((t) => t.lookups)).toEqual([['on-call'], ['on-call', 'ticket in jira']]);
    expect(terms[1]!.requirements).toContain('ticket matching ^OPS-[0-9]+$, open in jira and assigned to the requester');
  });
});

describe('policy test cases state the facts', () => {
  it('decides with the on-call and ticket answers a case gives, and as "lookup failed" when it gives none', () => {
    const cases = parsePolicyCases(
      `cases:
  - name: on call for checkout
    principal: { id: alice, groups: [sre] }
    request: { entitlement: shop-db/readonly, reason: queue }
    facts: { oncall: [checkout] }
    expect: { outcome: approved }
  - name: PagerDuty down
    principal: { id: alice, groups: [sre] }
    request: { entitlement: shop-db/readonly, reason: queue }
    expect: { outcome: pending }
  - name: closed ticket
    principal: { id: alice, groups: [sre] }
    request: { entitlement: shop-db/admin, reason: fix, ticket: OPS-9 }
    facts: { ticket: { open: false, status: Done } }
    expect: { outcome: denied, denial: ticket_closed }
  - name: Jira down
    principal: { id: alice, groups: [sre] }
    request: { entitlement: shop-db/admin, reason: fix, ticket: OPS-9 }
    expect: { outcome: denied, denial: ticket_unverified }
  - name: deliberately wrong, to prove cases can fail
    principal: { id: alice, groups: [sre] }
    request: { entitlement: shop-db/readonly, reason: queue }
    facts: { oncall: [ledger] }
    expect: { outcome: approved }
`,
      'cases.yaml',
    );
    expect(runPolicyCases(config, cases).map((r) => [r.name, r.passed])).toEqual([
      ['on call for checkout', true],
      ['PagerDuty down', true],
      ['closed ticket', true],
      ['Jira down', true],
      ['deliberately wrong, to prove cases can fail', false],
    ]);
  });
});
