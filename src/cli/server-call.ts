import { ERROR_CODES, LapseError, type ErrorCode } from '../domain/errors.js';

/**
 * One JSON call to a Lapse server. A problem document comes back as the LapseError it describes
 * (same code, so the same exit code); a server that cannot be reached is `server_unreachable`.
 */
export async function callServer<T>(
  server: string,
  path: string,
  options: { method?: string; token?: string; body?: unknown; timeoutMs?: number } = {},
): Promise<T> {
  let response: Response;
  try {
    response = await fetch(`${server}${path}`, {
      method: options.method ?? 'GET',
      headers: {
        accept: 'application/json',
        ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
        ...(options.body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      ...(options.body !== undefined ? { body: JSON.stringify(options.body) } : {}),
      signal: AbortSignal.timeout(options.timeoutMs ?? 30_000),
    });
  } catch (error) {
    const cause = (error as { cause?: { code?: string; message?: string } }).cause;
    throw new LapseError('server_unreachable', `cannot reach ${server}: ${cause?.code ?? cause?.message ?? (error as Error).message}`, {
      where: server,
      hint: 'Check the URL (--server or LAPSE_SERVER) and that `lapse serve` is running there.',
    });
  }
  const text = await response.text();
  let body: unknown;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    body = undefined;
  }
  if (!response.ok) {
    const problem = (body ?? {}) as { code?: string; detail?: string; hint?: string; where?: string; problems?: string[] };
    const code = problem.code && problem.code in ERROR_CODES ? (problem.code as ErrorCode) : response.status === 401 ? 'unauthenticated' : 'internal';
    throw new LapseError(code, problem.detail ?? `${server} answered ${response.status}`, {
      ...(problem.where ? { where: problem.where } : {}),
      ...(problem.hint ? { hint: problem.hint } : {}),
      ...(problem.problems ? { problems: problem.problems } : {}),
    });
  }
  return body as T;
}
