import { readFileSync } from 'node:fs';
import { expect, it } from 'vitest';
import { parseConfig } from './index.js';
import { parsePolicyCases, runPolicyCases } from './policy-cases.js';

it('examples/risk.yaml passes its policy cases, which use the server-computed risk', () => {
  const config = parseConfig(readFileSync('examples/risk.yaml', 'utf8'), 'examples/risk.yaml', {});
  const results = runPolicyCases(config, parsePolicyCases(readFileSync('examples/risk-policy-tests.yaml', 'utf8'), 'risk-policy-tests.yaml'));
  expect(results.filter((r) => !r.passed)).toEqual([]);
  expect(results).toHaveLength(8);
});

it('refuses an unknown risk signal in a case, saying where', () => {
  const bad =
    'cases:\n  - name: x\n    principal: { id: a }\n    request: { entitlement: db/ro }\n    risk: { signals: [sketchy] }\n    expect: { outcome: approved }\n';
  expect(() => parsePolicyCases(bad, 'bad.yaml')).toThrow(
    expect.objectContaining({ details: expect.objectContaining({ problems: [expect.stringMatching(/^cases\.0\.risk\.signals\.0: /)] }) }),
  );
});
