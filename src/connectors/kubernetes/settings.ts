import type { EntitlementConfig, TargetConfig } from '../../config/types.js';
import { LapseError } from '../../domain/errors.js';
import { checkInteger, checkKnownKeys, validateTls } from '../shared/index.js';
import { selectCluster } from './kubeconfig.js';

/** How Lapse authenticates to the API server. */
export type KubeCredentials =
  | { readonly source: 'inline'; readonly kubeconfig: string; readonly context: string | undefined }
  | { readonly source: 'path'; readonly path: string; readonly context: string | undefined }
  | { readonly source: 'in-cluster' };

/** Settings of a `kubernetes` target. */
export interface KubeTarget {
  readonly credentials: KubeCredentials;
  /** CA to verify the API server with instead of the kubeconfig's; verification off only with insecureSkipVerify. */
  readonly tls: { readonly ca: string | undefined; readonly insecureSkipVerify: boolean };
  readonly timeoutMs: number;
  /** Prepended to principal ids to form Kubernetes user / group names (the API server's --oidc-username-prefix). */
  readonly userPrefix: string;
  readonly groupPrefix: string;
  /** principal id -> exact Kubernetes user or group name, overriding the prefix. */
  readonly accounts: Readonly<Record<string, string>>;
  /** The API server URL (and its CA) written into service-account kubeconfigs, when requesters reach it elsewhere than Lapse does. */
  readonly requesterServer: string | undefined;
  readonly requesterCa: string | undefined;
}

export type SubjectMode = 'user' | 'group' | 'serviceAccount';

/** Settings of one entitlement: the role to bind, where, and to whom. */
export interface KubeEntitlement {
  readonly roleRef: { readonly kind: 'Role' | 'ClusterRole'; readonly name: string };
  /** The RoleBinding's namespace; undefined means a ClusterRoleBinding. */
  readonly namespace: string | undefined;
  readonly subject: SubjectMode;
  /** Where the ephemeral ServiceAccount lives (subject: serviceAccount). */
  readonly serviceAccountNamespace: string | undefined;
}

const TARGET_KEYS = [
  'kubeconfig',
  'kubeconfigPath',
  'context',
  'inCluster',
  'tls',
  'timeoutMs',
  'userPrefix',
  'groupPrefix',
  'accounts',
  'requesterServer',
  'requesterCa',
];
const ENTITLEMENT_KEYS = ['kind', 'name', 'namespace', 'subject', 'serviceAccountNamespace'];
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
// eslint-disable-next-line no-control-regex -- control characters are exactly what is refused.
const CONTROL = /[\u0000-\u001f\u007f]/;
/** Label values end with a letter or digit; Lapse puts target and entitlement names in labels. */
const LABEL_VALUE = /^[a-z0-9]([a-z0-9_.-]{0,61}[a-z0-9])?$/;
export const MAX_SUBJECT_NAME = 512;

/** Why a Kubernetes user or group name Lapse would bind is refused, or undefined. */
export function subjectNameProblem(name: string): string | undefined {
  if (name.length === 0 || name.length > MAX_SUBJECT_NAME) return `must be 1 to ${MAX_SUBJECT_NAME} characters`;
  if (CONTROL.test(name)) return 'contains a control character';
  // NB. system: names belong to Kubernetes itself (system:masters is a superuser group that RBAC cannot take back).
  if (name.startsWith('system:')) return 'starts with "system:", which Kubernetes reserves for its own users and groups';
  return undefined;
}

function stringProblem(value: unknown, where: string, max: number, example: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value.length > max || CONTROL.test(value)) return `${where}: must be text of at most ${max} characters, e.g. ${example}`;
  return undefined;
}

export function targetProblems(target: TargetConfig): string[] {
  const where = `targets.${target.name}.settings`;
  const s = target.settings;
  const problems = checkKnownKeys(s, TARGET_KEYS, where);
  if (!LABEL_VALUE.test(target.name))
    problems.push(`targets.${target.name}: a kubernetes target's name is written into labels and must end with a letter or digit; rename it`);
  const sources = (['kubeconfig', 'kubeconfigPath', 'inCluster'] as const).filter((k) => s[k] !== undefined && s[k] !== false);
  if (sources.length !== 1)
    problems.push(
      `${where}: give exactly one of kubeconfig (\${file:/etc/lapse/kubeconfig}), kubeconfigPath (/etc/lapse/kubeconfig) or inCluster: true${sources.length > 1 ? ` (found ${sources.join(', ')})` : ''}`,
    );
  if (s.inCluster !== undefined && typeof s.inCluster !== 'boolean') problems.push(`${where}.inCluster: must be true or false`);
  if (s.context !== undefined) {
    if (typeof s.context !== 'string' || s.context === '' || s.context.length > 253 || CONTROL.test(s.context))
      problems.push(`${where}.context: must be the name of a context in the kubeconfig`);
    else if (s.inCluster === true) problems.push(`${where}.context: in-cluster credentials have no contexts; remove it`);
  }
  if (
    s.kubeconfigPath !== undefined &&
    (typeof s.kubeconfigPath !== 'string' || !s.kubeconfigPath.startsWith('/') || s.kubeconfigPath.length > 4096 || CONTROL.test(s.kubeconfigPath))
  )
    problems.push(`${where}.kubeconfigPath: must be an absolute file path, e.g. /etc/lapse/kubeconfig`);
  const tlsProblems = validateTls(s.tls, where);
  problems.push(...tlsProblems);
  const tls = (s.tls ?? {}) as Record<string, unknown>;
  if (tls.enabled === false) problems.push(`${where}.tls.enabled: the Kubernetes API is always reached over https; remove it`);
  if (s.kubeconfig !== undefined) {
    if (typeof s.kubeconfig !== 'string' || s.kubeconfig === '')
      problems.push(`${where}.kubeconfig: must be the kubeconfig's content, e.g. \${file:/etc/lapse/kubeconfig}`);
    else {
      const cluster = selectCluster(s.kubeconfig, typeof s.context === 'string' ? s.context : undefined, `${where}.kubeconfig`);
      if (typeof cluster === 'string') problems.push(cluster);
      else if (cluster.skipsTlsVerify && tls.insecureSkipVerify !== true)
        problems.push(
          `${where}.kubeconfig: the cluster sets insecure-skip-tls-verify: true; give its CA (certificate-authority-data, or settings.tls.ca) or, if you really mean it, settings.tls.insecureSkipVerify: true`,
        );
    }
  }
  const timeout = checkInteger(s.timeoutMs, `${where}.timeoutMs`, 100, 120_000);
  if (timeout) problems.push(`${timeout} (milliseconds per API request)`);
  for (const key of ['userPrefix', 'groupPrefix'] as const) {
    const problem = stringProblem(s[key], `${where}.${key}`, 64, '"oidc:" (the API server\'s --oidc-username-prefix / --oidc-groups-prefix)');
    if (problem) problems.push(problem);
    else if (typeof s[key] === 'string' && (s[key] as string).startsWith('system:'))
      problems.push(`${where}.${key}: "system:" names belong to Kubernetes itself; use another prefix`);
  }
  if (s.accounts !== undefined) {
    if (typeof s.accounts !== 'object' || s.accounts === null || Array.isArray(s.accounts) || Object.keys(s.accounts).length > 10_000)
      problems.push(`${where}.accounts: must map principal ids to Kubernetes user or group names, e.g. { alice@example.com: alice }`);
    else
      for (const [principal, name] of Object.entries(s.accounts)) {
        const problem = typeof name === 'string' ? subjectNameProblem(name) : 'must be a name';
        if (problem) problems.push(`${where}.accounts.${principal}: ${problem}`);
      }
  }
  if (s.requesterServer !== undefined) {
    const ok =
      typeof s.requesterServer === 'string' &&
      s.requesterServer.length <= 2048 &&
      URL.canParse(s.requesterServer) &&
      new URL(s.requesterServer).protocol === 'https:';
    if (!ok) problems.push(`${where}.requesterServer: must be the API server's https URL as requesters reach it, e.g. https://k8s.example.com:6443`);
  }
  if (
    s.requesterCa !== undefined &&
    (typeof s.requesterCa !== 'string' || !s.requesterCa.includes('-----BEGIN CERTIFICATE-----') || s.requesterCa.length > 64 * 1024)
  )
    problems.push(`${where}.requesterCa: must be a PEM certificate bundle (up to 64 KiB); write \${file:/path/to/ca.pem}`);
  for (const entitlement of target.entitlements.values()) problems.push(...entitlementProblems(target, entitlement));
  return problems;
}

function entitlementProblems(target: TargetConfig, entitlement: EntitlementConfig): string[] {
  const where = `targets.${target.name}.entitlements.${entitlement.name}.settings`;
  const s = entitlement.settings;
  const problems = checkKnownKeys(s, ENTITLEMENT_KEYS, where);
  if (!LABEL_VALUE.test(entitlement.name))
    problems.push(
      `targets.${target.name}.entitlements.${entitlement.name}: a kubernetes entitlement's name is written into labels and must end with a letter or digit; rename it`,
    );
  if (s.kind !== 'Role' && s.kind !== 'ClusterRole') problems.push(`${where}.kind: must be Role or ClusterRole (the kind of the role to bind)`);
  if (typeof s.name !== 'string' || s.name === '' || s.name.length > 253 || CONTROL.test(s.name) || /[/%]/.test(s.name) || s.name === '.' || s.name === '..')
    problems.push(
      `${where}.name: must be the name of the ${s.kind === 'Role' ? 'Role' : 'ClusterRole'} to bind (up to 253 characters, no "/" or "%"), e.g. view`,
    );
  for (const key of ['namespace', 'serviceAccountNamespace'] as const) {
    if (s[key] !== undefined && (typeof s[key] !== 'string' || !DNS_LABEL.test(s[key] as string)))
      problems.push(`${where}.${key}: must be a namespace name (lower-case letters, digits and "-", up to 63 characters)`);
  }
  if (s.kind === 'Role' && s.namespace === undefined)
    problems.push(`${where}.namespace: a Role lives in a namespace and can only be bound there; give its namespace`);
  if (s.subject !== undefined && s.subject !== 'user' && s.subject !== 'group' && s.subject !== 'serviceAccount')
    problems.push(
      `${where}.subject: must be user (the requester's own Kubernetes user), group, or serviceAccount (an ephemeral ServiceAccount and token per grant)`,
    );
  if (s.subject === 'serviceAccount' && s.namespace === undefined && s.serviceAccountNamespace === undefined)
    problems.push(`${where}.serviceAccountNamespace: a ServiceAccount lives in a namespace; give one for this cluster-wide entitlement (e.g. lapse-grants)`);
  if (s.serviceAccountNamespace !== undefined && s.subject !== 'serviceAccount')
    problems.push(`${where}.serviceAccountNamespace: only for subject: serviceAccount; remove it`);
  return problems;
}

export function parseTarget(target: TargetConfig): KubeTarget {
  const problems = targetProblems(target);
  if (problems.length > 0)
    throw new LapseError('config_invalid', problems[0]!, { problems, hint: 'fix the target in lapse.yaml (lapse config validate shows every problem)' });
  const s = target.settings;
  const tls = (s.tls ?? {}) as { ca?: string; insecureSkipVerify?: boolean };
  const context = s.context as string | undefined;
  const credentials: KubeCredentials =
    s.inCluster === true
      ? { source: 'in-cluster' }
      : typeof s.kubeconfigPath === 'string'
        ? { source: 'path', path: s.kubeconfigPath, context }
        : { source: 'inline', kubeconfig: s.kubeconfig as string, context };
  return {
    credentials,
    tls: { ca: tls.ca, insecureSkipVerify: tls.insecureSkipVerify === true },
    timeoutMs: (s.timeoutMs as number | undefined) ?? 10_000,
    userPrefix: (s.userPrefix as string | undefined) ?? '',
    groupPrefix: (s.groupPrefix as string | undefined) ?? '',
    accounts: (s.accounts ?? {}) as Record<string, string>,
    requesterServer: s.requesterServer as string | undefined,
    requesterCa: s.requesterCa as string | undefined,
  };
}

/** Call after parseTarget (which checks every entitlement). */
export function parseEntitlement(entitlement: EntitlementConfig): KubeEntitlement {
  const s = entitlement.settings;
  const subject = (s.subject as SubjectMode | undefined) ?? 'user';
  return {
    roleRef: { kind: s.kind as 'Role' | 'ClusterRole', name: s.name as string },
    namespace: s.namespace as string | undefined,
    subject,
    serviceAccountNamespace: subject === 'serviceAccount' ? ((s.serviceAccountNamespace as string | undefined) ?? (s.namespace as string)) : undefined,
  };
}
