import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import type { Command } from 'commander';
import { LapseError } from '../../domain/errors.js';
import { loadCredentials, normalizeServerUrl, removeCredentials, saveCredentials } from '../credentials.js';
import { action, emit, type GlobalOptions } from '../output.js';
import { callServer } from '../server-call.js';
import { readSecretFromStdin } from '../stdin.js';

interface SessionInfo {
  principal: { id: string; kind: string; groups: string[] };
  roles: string[];
  scopes: string[];
  via: string;
}
interface IssuedToken {
  id: string;
  user: string;
  token: string;
  scopes: string[];
  expiresAt: string | null;
}

const LOGIN_TIMEOUT_MS = 5 * 60_000;

function chooseServer(flag: string | undefined): string {
  const server = flag ?? process.env.LAPSE_SERVER ?? loadCredentials()?.server;
  if (!server)
    throw new LapseError('validation_failed', 'which Lapse server?', {
      where: '--server',
      hint: 'Pass --server https://lapse.example.com (or set LAPSE_SERVER).',
    });
  return normalizeServerUrl(server);
}

function openBrowser(url: string): boolean {
  const command = process.platform === 'darwin' ? 'open' : process.platform === 'win32' ? 'explorer' : 'xdg-open';
  try {
    const child = spawn(command, [url], { detached: true, stdio: 'ignore' });
    child.on('error', () => undefined);
    child.unref();
    return true;
  } catch {
    return false;
  }
}

/**
 * The loopback flow (like `gh auth login`): listen on 127.0.0.1, send the browser to the server's
 * /auth/cli with our port, a state and a PKCE challenge, receive the one-time code on /callback,
 * and trade it (with the verifier) for an API token. The code alone is useless to anyone else.
 */
async function browserLogin(server: string, options: { browser: boolean }): Promise<IssuedToken> {
  const verifier = randomBytes(32).toString('base64url');
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  const state = randomBytes(16).toString('base64url');
  let settle: { resolve: (code: string) => void; reject: (error: Error) => void } | undefined;
  const received = new Promise<string>((resolve, reject) => {
    settle = { resolve, reject };
  });
  const listener = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    if (url.pathname !== '/callback') {
      res.writeHead(404).end();
      return;
    }
    const code = url.searchParams.get('code');
    if (url.searchParams.get('state') !== state || !code) {
      res.writeHead(400, { 'content-type': 'text/plain; charset=utf-8' }).end('This sign-in does not belong to the waiting `lapse login`. Run it again.\n');
      return;
    }
    res
      .writeHead(200, { 'content-type': 'text/html; charset=utf-8' })
      .end('<!doctype html><title>Lapse</title><p>Signed in. You can close this tab and return to the terminal.</p>');
    settle?.resolve(code);
  });
  await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
  const port = (listener.address() as AddressInfo).port;
  const link = `${server}/auth/cli?${new URLSearchParams({ port: String(port), state, code_challenge: challenge })}`;
  process.stderr.write(`To sign in, open this link in your browser:\n\n  ${link}\n\nWaiting for the sign-in to finish...\n`);
  if (options.browser) openBrowser(link);
  const timer = setTimeout(
    () => settle?.reject(new LapseError('unauthenticated', 'the sign-in did not finish within 5 minutes', { hint: 'Run `lapse login` again.' })),
    LOGIN_TIMEOUT_MS,
  );
  try {
    const code = await received;
    return await callServer<IssuedToken>(server, '/api/v1/auth/cli/token', {
      method: 'POST',
      body: { code, codeVerifier: verifier, name: `lapse login on ${hostname().slice(0, 60)}` },
    });
  } finally {
    clearTimeout(timer);
    listener.closeAllConnections();
    listener.close();
  }
}

/** `lapse login`, `lapse whoami`, `lapse logout`. */
export function registerLoginCommands(program: Command): void {
  program
    .command('login')
    .description('sign in to a Lapse server (browser sign-in, or an existing API token) and save the credentials')
    .option('--server <url>', 'the Lapse server (env LAPSE_SERVER; default: the current one)')
    .option('--token <token>', 'use this API token instead of signing in through the browser')
    .option('--with-token', 'read the API token from standard input')
    .option('--no-browser', 'only print the sign-in link (for machines without a browser)')
    .action(
      action(async (options: { server?: string; token?: string; withToken?: boolean; browser: boolean }, command: Command) => {
        const globals = command.optsWithGlobals<GlobalOptions>();
        const server = chooseServer(options.server);
        if (options.token && options.withToken) throw new LapseError('validation_failed', 'use --token or --with-token, not both', { where: '--token' });
        let token: string;
        let user: string;
        let expiresAt: string | null = null;
        if (options.token || options.withToken) {
          token = options.token ?? (await readSecretFromStdin('token', 1024));
          const me = await callServer<SessionInfo>(server, '/api/v1/auth/session', { token });
          user = me.principal.id;
        } else {
          const issued = await browserLogin(server, {
            browser: options.browser && !!(process.env.DISPLAY || process.env.WAYLAND_DISPLAY || process.platform === 'darwin' || process.platform === 'win32'),
          });
          token = issued.token;
          user = issued.user;
          expiresAt = issued.expiresAt;
        }
        const previous = process.env.LAPSE_TOKEN ? null : loadCredentials(server);
        saveCredentials({ server, token, user });
        // NB. Signing in again replaces the saved token; the old one is revoked (best effort) rather
        // than left valid, unused, until it expires.
        if (previous && previous.token !== token)
          await callServer(server, '/api/v1/auth/logout', { method: 'POST', token: previous.token }).catch(() => undefined);
        emit(globals, { server, user, expiresAt }, () => `Signed in to ${server} as ${user}${expiresAt ? ` (token expires ${expiresAt})` : ''}.`);
      }),
    );

  program
    .command('whoami')
    .description('show who you are signed in as, with your groups, roles and scopes')
    .option('--server <url>', 'the Lapse server (default: the current one)')
    .action(
      action(async (options: { server?: string }, command: Command) => {
        const globals = command.optsWithGlobals<GlobalOptions>();
        const credentials = loadCredentials(options.server);
        if (!credentials) throw new LapseError('unauthenticated', 'you are not signed in', { hint: 'Run `lapse login --server <url>`.' });
        const me = await callServer<SessionInfo>(credentials.server, '/api/v1/auth/session', { token: credentials.token });
        emit(globals, { server: credentials.server, ...me }, () =>
          [
            `${me.principal.id} on ${credentials.server}`,
            `  groups: ${me.principal.groups.join(', ') || '(none)'}`,
            `  roles:  ${me.roles.join(', ') || '(none)'}`,
            `  scopes: ${me.scopes.join(', ')}`,
          ].join('\n'),
        );
      }),
    );

  program
    .command('logout')
    .description('revoke your token on the server and forget it here')
    .option('--server <url>', 'the Lapse server (default: the current one)')
    .action(
      action(async (options: { server?: string }, command: Command) => {
        const globals = command.optsWithGlobals<GlobalOptions>();
        const credentials = loadCredentials(options.server);
        if (!credentials) throw new LapseError('not_found', 'you are not signed in', { hint: 'Nothing to do.' });
        let revoked = true;
        try {
          await callServer(credentials.server, '/api/v1/auth/logout', { method: 'POST', token: credentials.token });
        } catch (error) {
          // NB. A token the server no longer accepts is as good as revoked; forget it anyway.
          if (!(error instanceof LapseError && error.code === 'unauthenticated')) throw error;
          revoked = false;
        }
        const fromEnvironment = Boolean(process.env.LAPSE_TOKEN);
        if (!fromEnvironment) removeCredentials(credentials.server);
        emit(
          globals,
          { server: credentials.server, user: credentials.user, revoked, forgotten: !fromEnvironment },
          () =>
            `${revoked ? 'Revoked your token on' : 'Your token was already invalid on'} ${credentials.server}${fromEnvironment ? ' (LAPSE_TOKEN is set; unset it yourself)' : '; signed out here'}.`,
        );
      }),
    );
}
