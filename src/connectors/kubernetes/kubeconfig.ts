import { parse } from 'yaml';

/**
 * Offline checks of the kubeconfig Lapse connects with, when it is given inline
 * (`kubeconfig: ${file:/etc/lapse/kubeconfig}`): it parses, the context exists and names a cluster
 * and a user that exist, the server is https, and TLS verification is not switched off inside the
 * file behind the settings' back. The SDK parses it again when connecting; this only makes the
 * mistakes show at `lapse config validate` with a path and a fix.
 */
export interface SelectedCluster {
  readonly server: string;
  readonly skipsTlsVerify: boolean;
}

const MAX_KUBECONFIG = 1024 * 1024;

type Named = { name?: unknown; cluster?: Record<string, unknown>; context?: Record<string, unknown>; user?: unknown };

/** The context's cluster, or a problem string ("<where>: what is wrong, how to fix it"). */
export function selectCluster(text: string, context: string | undefined, where: string): SelectedCluster | string {
  if (text.length > MAX_KUBECONFIG) return `${where}: is larger than 1 MiB; is it really a kubeconfig?`;
  let doc: Record<string, unknown>;
  try {
    const parsed = parse(text, { maxAliasCount: 100 }) as unknown;
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
      return `${where}: is not a kubeconfig (a YAML map with clusters, users and contexts)`;
    doc = parsed as Record<string, unknown>;
  } catch (error) {
    return `${where}: is not valid YAML (${(error as Error).message.split('\n')[0]}); point it at a kubeconfig file with \${file:/path/to/kubeconfig}`;
  }
  const list = (key: string) => (Array.isArray(doc[key]) ? (doc[key] as Named[]) : []);
  const name = context ?? (typeof doc['current-context'] === 'string' ? doc['current-context'] : undefined);
  if (!name) return `${where}: has no current-context; set settings.context to one of ${names(list('contexts'))}`;
  const ctx = list('contexts').find((c) => c.name === name)?.context;
  if (!ctx) return `${where}: has no context "${name}"; use one of ${names(list('contexts'))}`;
  const clusterName = ctx.cluster;
  const cluster = list('clusters').find((c) => c.name === clusterName)?.cluster;
  if (!cluster) return `${where}: context "${name}" names cluster "${String(clusterName)}", which the file does not define`;
  const userName = ctx.user;
  if (!list('users').some((u) => u.name === userName)) return `${where}: context "${name}" names user "${String(userName)}", which the file does not define`;
  const server = cluster.server;
  if (typeof server !== 'string' || !URL.canParse(server) || new URL(server).protocol !== 'https:')
    return `${where}: cluster "${String(clusterName)}" has server ${JSON.stringify(server)}; Lapse talks to the API server over https only`;
  return { server, skipsTlsVerify: cluster['insecure-skip-tls-verify'] === true };
}

function names(items: readonly Named[]): string {
  const found = items.map((i) => i.name).filter((n): n is string => typeof n === 'string');
  return found.length > 0 ? found.map((n) => `"${n}"`).join(', ') : '(none defined)';
}
