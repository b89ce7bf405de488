import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { z } from 'zod';
import { LapseError } from '../domain/errors.js';

/** What the CLI needs to call a server as someone. */
export interface StoredCredentials {
  readonly server: string;
  readonly token: string;
  readonly user: string;
}

const fileSchema = z.object({
  current: z.string().max(2048).optional(),
  servers: z.record(z.string().max(2048), z.object({ token: z.string().max(256), user: z.string().max(256), savedAt: z.string().max(64) })).default({}),
});
type CredentialsFile = z.infer<typeof fileSchema>;

/** `${LAPSE_CONFIG_DIR:-${XDG_CONFIG_HOME:-~/.config}/lapse}`. */
export function configDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.LAPSE_CONFIG_DIR || join(env.XDG_CONFIG_HOME || join(homedir(), '.config'), 'lapse');
}

export function credentialsPath(env: NodeJS.ProcessEnv = process.env): string {
  return join(configDir(env), 'credentials.json');
}

/** A server URL in one canonical form (scheme, host, port, path without a trailing slash). */
export function normalizeServerUrl(value: string, where = '--server'): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new LapseError('validation_failed', `"${value.slice(0, 80)}" is not a URL`, { where, hint: 'Write the server as https://lapse.example.com.' });
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:')
    throw new LapseError('validation_failed', `"${value.slice(0, 80)}" is not an http(s) URL`, { where });
  if (url.username || url.password || url.search || url.hash)
    throw new LapseError('validation_failed', 'a server URL has no credentials, query or fragment', { where });
  return `${url.origin}${url.pathname.replace(/\/+$/, '')}`;
}

function readFile(path: string): CredentialsFile {
  if (!existsSync(path)) return { servers: {} };
  const mode = statSync(path).mode & 0o777;
  // NB. Tokens are bearer secrets: a file others can read is refused rather than used.
  if ((mode & 0o077) !== 0) {
    throw new LapseError('forbidden', `${path} can be read by other users (mode ${mode.toString(8).padStart(4, '0')})`, {
      where: path,
      hint: `Run \`chmod 600 ${path}\` (and consider revoking the tokens in it).`,
    });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch {
    throw new LapseError('config_invalid', `${path} is not valid JSON`, { where: path, hint: 'Delete it and run `lapse login` again.' });
  }
  const file = fileSchema.safeParse(parsed);
  if (!file.success)
    throw new LapseError('config_invalid', `${path} is not a Lapse credentials file: ${file.error.issues[0]?.message}`, {
      where: path,
      hint: 'Delete it and run `lapse login` again.',
    });
  return file.data;
}

function writeFile(path: string, file: CredentialsFile): void {
  const dir = dirname(path);
  if (!existsSync(dir)) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    chmodSync(dir, 0o700);
  }
  // Written beside the target, then renamed: a crash never leaves half a file; 0600 from the start.
  const temporary = `${path}.${process.pid}.tmp`;
  writeFileSync(temporary, `${JSON.stringify(file, null, 2)}\n`, { mode: 0o600 });
  chmodSync(temporary, 0o600);
  renameSync(temporary, path);
}

/**
 * The credentials to use: `LAPSE_TOKEN` (+ `LAPSE_SERVER`) for automation, else the saved ones for
 * `server` (or the current server). Null when there are none.
 */
export function loadCredentials(server?: string, env: NodeJS.ProcessEnv = process.env): StoredCredentials | null {
  const wanted = server ?? env.LAPSE_SERVER;
  if (env.LAPSE_TOKEN) {
    const chosen = wanted ?? readFile(credentialsPath(env)).current;
    if (!chosen)
      throw new LapseError('validation_failed', 'LAPSE_TOKEN is set but no server is', {
        where: 'LAPSE_SERVER',
        hint: 'Set LAPSE_SERVER (or pass --server) too.',
      });
    return { server: normalizeServerUrl(chosen, 'LAPSE_SERVER'), token: env.LAPSE_TOKEN, user: env.LAPSE_USER ?? '' };
  }
  const file = readFile(credentialsPath(env));
  const key = wanted ? normalizeServerUrl(wanted) : file.current;
  if (!key) return null;
  const entry = file.servers[key];
  return entry ? { server: key, token: entry.token, user: entry.user } : null;
}

/** Saves credentials for a server and makes it the current one. */
export function saveCredentials(credentials: StoredCredentials, env: NodeJS.ProcessEnv = process.env): void {
  const path = credentialsPath(env);
  const file = readFile(path);
  const server = normalizeServerUrl(credentials.server);
  file.servers[server] = { token: credentials.token, user: credentials.user, savedAt: new Date().toISOString() };
  file.current = server;
  writeFile(path, file);
}

/** Forgets the credentials for a server (default: the current one); returns what was removed. */
export function removeCredentials(server?: string, env: NodeJS.ProcessEnv = process.env): StoredCredentials | null {
  const path = credentialsPath(env);
  const file = readFile(path);
  const key = server ? normalizeServerUrl(server) : file.current;
  const entry = key ? file.servers[key] : undefined;
  if (!key || !entry) return null;
  delete file.servers[key];
  if (file.current === key) file.current = Object.keys(file.servers)[0];
  writeFile(path, file);
  return { server: key, token: entry.token, user: entry.user };
}
