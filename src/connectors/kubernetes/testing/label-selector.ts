/**
 * Kubernetes label selectors as the API server parses `?labelSelector=` (the set-based grammar of
 * k8s.io/apimachinery/pkg/labels): requirements separated by commas, each `key`, `!key`,
 * `key=value`, `key==value`, `key!=value`, `key in (a,b)` or `key notin (a,b)`. A malformed
 * selector is refused, as the server refuses it with 400 BadRequest.
 */
export type LabelSelector = (labels: Readonly<Record<string, string>>) => boolean;

const KEY = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$/;

/** Splits on commas outside parentheses. */
function requirements(selector: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let current = '';
  for (const char of selector) {
    if (char === '(') depth++;
    if (char === ')') depth--;
    if (char === ',' && depth === 0) {
      parts.push(current);
      current = '';
    } else current += char;
  }
  parts.push(current);
  return parts.map((p) => p.trim());
}

function checked(key: string, values: readonly string[]): void {
  if (!KEY.test(key)) throw new Error(`invalid label key "${key}"`);
  for (const value of values) if (!VALUE.test(value)) throw new Error(`invalid label value: "${value}"`);
}

/** Parses a selector; throws an Error with the API server's kind of message when it is malformed. */
export function parseLabelSelector(selector: string): LabelSelector {
  if (selector.trim() === '') return () => true;
  const tests = requirements(selector).map((requirement): LabelSelector => {
    let match = /^([^\s!=(),]+)\s+(in|notin)\s*\(([^()]*)\)$/.exec(requirement);
    if (match) {
      const [, key, op, list] = match as unknown as [string, string, string, string];
      const values = list.split(',').map((v) => v.trim());
      checked(key, values);
      return op === 'in' ? (labels) => key in labels && values.includes(labels[key]!) : (labels) => !(key in labels) || !values.includes(labels[key]!);
    }
    match = /^([^\s!=(),]+)\s*(==|=|!=)\s*([^\s!=(),]*)$/.exec(requirement);
    if (match) {
      const [, key, op, value] = match as unknown as [string, string, string, string];
      checked(key, [value]);
      return op === '!=' ? (labels) => labels[key] !== value : (labels) => labels[key] === value;
    }
    match = /^(!?)([^\s!=(),]+)$/.exec(requirement);
    if (match) {
      const [, not, key] = match as unknown as [string, string, string];
      checked(key, []);
      return not ? (labels) => !(key in labels) : (labels) => key in labels;
    }
    throw new Error(`unable to parse requirement: "${requirement}"`);
  });
  return (labels) => tests.every((test) => test(labels));
}
