/**
 * A role's trust policy, read for reconciliation: anyone it lets assume the role other than Lapse
 * has standing access, which is what a just-in-time role must not have. Pure.
 */

export interface TrustedPrincipal {
  /** AWS (accounts, users, roles), Service, Federated, or "*" for everyone. */
  readonly kind: string;
  readonly value: string;
}

type Statement = { Effect?: unknown; Principal?: unknown; Action?: unknown; NotAction?: unknown };

const ASSUME = /^(sts:AssumeRole(WithSAML|WithWebIdentity)?|sts:\*|\*)$/;

function statementsOf(document: Record<string, unknown>): Statement[] {
  const s = document.Statement;
  return (Array.isArray(s) ? s : s === undefined ? [] : [s]) as Statement[];
}

const list = (value: unknown): unknown[] => (Array.isArray(value) ? value : value === undefined ? [] : [value]);

/** Whether the statement lets its principals assume the role (NotAction counts: it allows everything else). */
function allowsAssume(s: Statement): boolean {
  if (s.Effect !== 'Allow') return false;
  if (s.NotAction !== undefined) return !list(s.NotAction).some((a) => typeof a === 'string' && ASSUME.test(a) && a.startsWith('sts:AssumeRole'));
  return list(s.Action).some((a) => typeof a === 'string' && ASSUME.test(a));
}

/** Every principal an Allow statement lets assume the role. */
export function trustedPrincipals(document: Record<string, unknown>): TrustedPrincipal[] {
  const found = new Map<string, TrustedPrincipal>();
  for (const s of statementsOf(document).filter(allowsAssume)) {
    if (s.Principal === '*') found.set('*', { kind: '*', value: '*' });
    else if (typeof s.Principal === 'object' && s.Principal !== null) {
      for (const [kind, values] of Object.entries(s.Principal)) {
        for (const value of list(values)) if (typeof value === 'string') found.set(value, { kind, value });
      }
    }
  }
  return [...found.values()];
}

/**
 * The trust policy without `value` among the principals of its Allow statements; statements left
 * with no principal go. Undefined when nothing would be left (IAM refuses an empty trust policy).
 */
export function withoutPrincipal(document: Record<string, unknown>, value: string): Record<string, unknown> | undefined {
  const kept: Statement[] = [];
  for (const s of statementsOf(document)) {
    if (s.Effect !== 'Allow' || s.Principal === undefined) {
      kept.push(s);
      continue;
    }
    if (s.Principal === '*') {
      if (value !== '*') kept.push(s);
      continue;
    }
    const principal: Record<string, unknown> = {};
    for (const [kind, values] of Object.entries(s.Principal as Record<string, unknown>)) {
      const left = list(values).filter((v) => v !== value);
      if (left.length > 0) principal[kind] = Array.isArray(values) ? left : left[0];
    }
    if (Object.keys(principal).length > 0) kept.push({ ...s, Principal: principal });
  }
  return kept.some((s) => s.Effect === 'Allow') ? { ...document, Statement: kept } : undefined;
}

/** Whether a trust-policy principal is Lapse's own user or role (a role session's ARN names the role without its path). */
export function isLapse(value: string, lapseArn: string): boolean {
  if (value === lapseArn) return true;
  const [, , , , account, resource = ''] = lapseArn.split(':');
  const session = /^assumed-role\/([^/]+)\//.exec(resource);
  const lapseName = session ? `role/${session[1]}` : withoutPath(resource);
  const parts = value.split(':');
  return parts[2] === 'iam' && parts[4] === account && withoutPath(parts[5] ?? '') === lapseName;
}

/** Whether the principal lets Lapse in: Lapse itself, its account, or everyone. Removing one could lock Lapse out. */
export function coversLapse(value: string, lapseArn: string): boolean {
  const account = lapseArn.split(':')[4];
  return isLapse(value, lapseArn) || value === '*' || value === account || value === `arn:aws:iam::${account}:root`;
}

const withoutPath = (resource: string) => resource.replace(/^(user|role)\/(?:.*\/)?([^/]+)$/, '$1/$2');
