/**
 * The fake API server's object validation, after k8s.io/kubernetes/pkg/apis/rbac/validation and
 * apimachinery's ValidateObjectMeta: which names each resource accepts, label syntax, and the
 * shape of bindings. Each problem becomes one `causes` entry of a 422 Invalid Status.
 */
import type { Subject } from './fake-rbac.js';

export interface Cause {
  readonly field: string;
  readonly message: string;
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL_NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const RBAC_GROUP = 'rbac.authorization.k8s.io';

export function dnsLabelProblem(value: string): string | undefined {
  if (value.length > 63) return 'must be no more than 63 characters';
  if (!DNS_LABEL.test(value))
    return "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character";
  return undefined;
}

export function dnsSubdomainProblem(value: string): string | undefined {
  if (value.length > 253) return 'must be no more than 253 characters';
  if (!DNS_SUBDOMAIN.test(value))
    return "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";
  return undefined;
}

/** RBAC objects accept any path segment name (ValidateRBACName). */
export function pathSegmentProblem(value: string): string | undefined {
  if (value === '.' || value === '..') return `may not be '${value}'`;
  if (value.includes('/') || value.includes('%')) return `may not contain '${value.includes('/') ? '/' : '%'}'`;
  return undefined;
}

export function metadataCauses(metadata: Record<string, unknown>, nameRule: 'path-segment' | 'dns-subdomain'): Cause[] {
  const causes: Cause[] = [];
  const name = metadata.name;
  if (typeof name !== 'string' || name === '') causes.push({ field: 'metadata.name', message: 'Required value: name or generateName is required' });
  else {
    const problem = nameRule === 'path-segment' ? pathSegmentProblem(name) : dnsSubdomainProblem(name);
    if (problem) causes.push({ field: 'metadata.name', message: `Invalid value: "${name}": ${problem}` });
  }
  for (const [key, value] of Object.entries((metadata.labels ?? {}) as Record<string, unknown>)) {
    const slash = key.lastIndexOf('/');
    const prefix = slash >= 0 ? key.slice(0, slash) : undefined;
    const local = slash >= 0 ? key.slice(slash + 1) : key;
    if ((prefix !== undefined && dnsSubdomainProblem(prefix)) || local.length > 63 || !LABEL_NAME.test(local))
      causes.push({ field: 'metadata.labels', message: `Invalid value: "${key}": name part must consist of alphanumeric characters, '-', '_' or '.'` });
    if (typeof value !== 'string' || value.length > 63 || !LABEL_VALUE.test(value))
      causes.push({
        field: 'metadata.labels',
        message: `Invalid value: "${String(value)}": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.'`,
      });
  }
  const annotations = JSON.stringify(metadata.annotations ?? {});
  if (annotations.length > 256 * 1024) causes.push({ field: 'metadata.annotations', message: 'Too long: must have at most 262144 bytes' });
  return causes;
}

export function bindingCauses(body: Record<string, unknown>, namespaced: boolean): Cause[] {
  const causes: Cause[] = [];
  const roleRef = body.roleRef as { apiGroup?: string; kind?: string; name?: string } | undefined;
  if (!roleRef || typeof roleRef !== 'object') causes.push({ field: 'roleRef', message: 'Required value' });
  else {
    if (roleRef.apiGroup !== RBAC_GROUP)
      causes.push({ field: 'roleRef.apiGroup', message: `Unsupported value: "${roleRef.apiGroup}": supported values: "${RBAC_GROUP}"` });
    const kinds = namespaced ? ['Role', 'ClusterRole'] : ['ClusterRole'];
    if (!kinds.includes(roleRef.kind ?? ''))
      causes.push({ field: 'roleRef.kind', message: `Unsupported value: "${roleRef.kind}": supported values: ${kinds.map((k) => `"${k}"`).join(', ')}` });
    if (typeof roleRef.name !== 'string' || roleRef.name === '') causes.push({ field: 'roleRef.name', message: 'Required value' });
    else if (pathSegmentProblem(roleRef.name))
      causes.push({ field: 'roleRef.name', message: `Invalid value: "${roleRef.name}": ${pathSegmentProblem(roleRef.name)}` });
  }
  ((body.subjects ?? []) as Subject[]).forEach((subject, i) => {
    const field = `subjects[${i}]`;
    if (typeof subject.name !== 'string' || subject.name === '') causes.push({ field: `${field}.name`, message: 'Required value' });
    if (subject.kind === 'ServiceAccount') {
      if (subject.apiGroup) causes.push({ field: `${field}.apiGroup`, message: `Unsupported value: "${subject.apiGroup}": supported values: ""` });
      const problem = typeof subject.name === 'string' && subject.name !== '' ? dnsSubdomainProblem(subject.name) : undefined;
      if (problem) causes.push({ field: `${field}.name`, message: `Invalid value: "${subject.name}": ${problem}` });
      if (!namespaced && !subject.namespace) causes.push({ field: `${field}.namespace`, message: 'Required value' });
    } else if (subject.kind === 'User' || subject.kind === 'Group') {
      if (subject.apiGroup !== RBAC_GROUP)
        causes.push({ field: `${field}.apiGroup`, message: `Unsupported value: "${subject.apiGroup}": supported values: "${RBAC_GROUP}"` });
    } else {
      causes.push({ field: `${field}.kind`, message: `Unsupported value: "${subject.kind}": supported values: "ServiceAccount", "User", "Group"` });
    }
  });
  return causes;
}
