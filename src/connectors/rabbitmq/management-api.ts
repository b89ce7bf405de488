import type { TargetConfig } from '../../config/types.js';
import { LapseError } from '../../domain/errors.js';
import { send } from '../webhook/index.js';
import type { RabbitTarget } from './rabbitmq-settings.js';

/**
 * The RabbitMQ management HTTP API as Lapse uses it: basic auth with Lapse's own user, a timeout
 * per request on top of the call's deadline, names percent-encoded into paths by `path()`, and
 * failures turned into LapseErrors that say which request failed and why.
 */
export class ManagementApi {
  constructor(
    private readonly target: TargetConfig,
    private readonly settings: RabbitTarget,
    private readonly signal: AbortSignal,
  ) {}

  /** Sends one request; resolves with the status and parsed JSON (null for an empty body) for 2xx and the statuses in `accept`. */
  async request(method: 'GET' | 'PUT' | 'DELETE', apiPath: string, body?: unknown, accept: readonly number[] = []): Promise<{ status: number; json: unknown }> {
    if (this.signal.aborted) throw this.deadline(method, apiPath);
    const attempt = AbortSignal.any([this.signal, AbortSignal.timeout(this.settings.timeoutMs)]);
    const authorization = `Basic ${Buffer.from(`${this.settings.username}:${this.settings.password}`).toString('base64')}`;
    let response;
    try {
      response = await send(this.settings.endpoint, {
        method,
        path: apiPath,
        headers: { authorization, accept: 'application/json', ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: attempt,
      });
    } catch (error) {
      if (this.signal.aborted) throw this.deadline(method, apiPath);
      const why = attempt.aborted ? `no answer within ${this.settings.timeoutMs} ms` : (error as Error).message;
      throw new LapseError('connector_failed', `rabbitmq target ${this.target.name}: ${method} ${apiPath} failed: ${why}`, {
        where: `targets.${this.target.name}.settings.url`,
        hint: `check that the management plugin listens at ${this.settings.endpoint.url.origin} (rabbitmq-plugins enable rabbitmq_management)`,
      });
    }
    if ((response.status >= 200 && response.status < 300) || accept.includes(response.status)) {
      try {
        return { status: response.status, json: response.body ? (JSON.parse(response.body) as unknown) : null };
      } catch {
        throw new LapseError(
          'connector_failed',
          `rabbitmq target ${this.target.name}: ${method} ${apiPath} answered HTTP ${response.status} with a body that is not JSON`,
          {
            where: `targets.${this.target.name}.settings.url`,
            hint: 'point settings.url at the management API itself (e.g. https://mq.example.com:15671), not a proxy page',
          },
        );
      }
    }
    throw this.refused(method, apiPath, response.status, response.body);
  }

  private refused(method: string, apiPath: string, status: number, body: string): LapseError {
    const reason = /"reason"\s*:\s*"([^"]{0,300})"/.exec(body)?.[1] ?? body.replace(/[^\x20-\x7e]/g, ' ').slice(0, 200);
    const hint =
      status === 401
        ? `the management API refused the login of "${this.settings.username}": check settings.username and the password reference, and that the user has a management tag`
        : status === 403
          ? `Lapse's RabbitMQ user "${this.settings.username}" needs the administrator tag to manage users, permissions and connections`
          : undefined;
    return new LapseError(
      'connector_failed',
      `rabbitmq target ${this.target.name}: ${method} ${apiPath} answered HTTP ${status}${reason ? `: ${reason}` : ''}`,
      {
        where: `targets.${this.target.name}`,
        ...(hint ? { hint } : {}),
      },
    );
  }

  private deadline(method: string, apiPath: string): LapseError {
    return new LapseError('connector_timeout', `rabbitmq target ${this.target.name}: ${method} ${apiPath} did not finish before the deadline`, {
      where: `targets.${this.target.name}`,
    });
  }
}

/**
 * `/api/<segment>/<segment>…` with every segment percent-encoded ("/" the vhost becomes %2F).
 * NB. "." and ".." cannot be sent at all: URL parsers treat them (even as %2E) as dot segments
 * and would resolve `/api/permissions/../users` to another resource.
 */
export function path(...segments: string[]): string {
  for (const segment of segments) {
    if (segment === '.' || segment === '..')
      throw new LapseError('validation_failed', `"${segment}" cannot be used as a RabbitMQ name in the management API`, { hint: 'rename the vhost or user' });
  }
  return `/api/${segments.map((s) => encodeURIComponent(s)).join('/')}`;
}

/**
 * Closes the user's connections: all of them, or those to one vhost. `/api/connections/username/`
 * (RabbitMQ 3.10 has it) answers from connection tracking at once; older servers are read from the
 * full list. A single connection can only be closed once the statistics database knows it (about
 * 5 s after it opened): if one is not known yet, every connection of the user is closed rather
 * than leave it open.
 */
export async function closeConnections(api: ManagementApi, account: string, vhost?: string): Promise<void> {
  // NB. RabbitMQ 3.10 answers 500 when a connection it is closing ends by itself meanwhile
  // ({normal, {gen_server, call, …}} in its log): the connection is gone, so ask once more for the rest.
  const everything = async () => {
    const first = await api.request('DELETE', path('connections', 'username', account), undefined, [404, 500]);
    return first.status === 500 ? api.request('DELETE', path('connections', 'username', account), undefined, [404]) : first;
  };
  if (vhost === undefined && (await everything()).status !== 404) return;
  const listed = await api.request('GET', path('connections', 'username', account), undefined, [404]);
  const connections =
    listed.status === 404
      ? ((await api.request('GET', '/api/connections?columns=name,user,vhost')).json as { name: string; user: string; vhost: string }[]).filter(
          (c) => c.user === account,
        )
      : (listed.json as { name: string; vhost: string }[]);
  for (const connection of connections) {
    if (vhost !== undefined && connection.vhost !== vhost) continue;
    const closed = await api.request('DELETE', path('connections', connection.name), undefined, [404]);
    if (closed.status === 404 && listed.status !== 404) {
      await everything();
      return;
    }
  }
}
