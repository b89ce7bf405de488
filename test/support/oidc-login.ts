/**
 * A browser without a browser: follows redirects by hand with a cookie jar per origin, so a test
 * can sign in through the real OpenID provider (test/support/oidc-provider.ts completes its
 * interaction for the user named by `login_hint`) exactly as a browser would.
 */
class CookieJar {
  private readonly jars = new Map<string, Map<string, string>>();

  header(url: URL): string {
    const jar = this.jars.get(url.origin);
    return jar ? [...jar].map(([k, v]) => `${k}=${v}`).join('; ') : '';
  }

  store(url: URL, response: Response): void {
    const jar = this.jars.get(url.origin) ?? new Map<string, string>();
    this.jars.set(url.origin, jar);
    for (const line of response.headers.getSetCookie()) {
      const [pair, ...attributes] = line.split(';');
      const eq = pair!.indexOf('=');
      const name = pair!.slice(0, eq).trim();
      const value = pair!.slice(eq + 1).trim();
      const expired = attributes.some((a) => /^\s*max-age=0\s*$/i.test(a) || (/^\s*expires=/i.test(a) && Date.parse(a.split('=')[1]!) < Date.now()));
      if (expired || value === '') jar.delete(name);
      else jar.set(name, value);
    }
  }

  get(origin: string, name: string): string | undefined {
    return this.jars.get(origin)?.get(name);
  }
}

export interface BrowserStep {
  readonly url: string;
  readonly status: number;
}

export interface Walk {
  readonly jar: CookieJar;
  readonly steps: BrowserStep[];
  readonly final: Response;
  readonly finalUrl: URL;
}

/** Follows redirects from `start` (at most 20), adding `login_hint` on the way to the provider's /auth. */
async function walk(
  start: string,
  username: string,
  options: { jar?: CookieJar; stopAt?: (url: URL) => boolean; rewrite?: (url: URL) => URL } = {},
): Promise<Walk> {
  const jar = options.jar ?? new CookieJar();
  const steps: BrowserStep[] = [];
  let url = new URL(start);
  for (let hop = 0; hop < 20; hop++) {
    if (url.pathname === '/auth' && url.searchParams.has('client_id') && !url.searchParams.has('login_hint')) url.searchParams.set('login_hint', username);
    if (options.rewrite) url = options.rewrite(url);
    const response = await fetch(url, { redirect: 'manual', headers: { cookie: jar.header(url), accept: 'text/html,application/json' } });
    jar.store(url, response);
    steps.push({ url: url.href, status: response.status });
    const location = response.headers.get('location');
    if (response.status < 300 || response.status >= 400 || !location) return { jar, steps, final: response, finalUrl: url };
    await response.arrayBuffer();
    const next = new URL(location, url);
    if (options.stopAt?.(next)) return { jar, steps, final: response, finalUrl: next };
    url = next;
  }
  throw new Error(`more than 20 redirects: ${steps.map((s) => `${s.status} ${s.url}`).join(' -> ')}`);
}

export interface LapseSignIn {
  /** The value of the Lapse session cookie. */
  readonly cookie: string;
  readonly cookieName: string;
  readonly csrfToken: string;
  /** Where Lapse sent the browser after sign-in (the returnTo path). */
  readonly landedAt: string;
  readonly steps: BrowserStep[];
}

/**
 * Signs `username` in to the Lapse server at `serverBaseUrl` through its OIDC provider, and
 * returns the session cookie and CSRF token. Throws with the redirect chain when it fails.
 */
export async function signInThroughOidc(
  serverBaseUrl: string,
  username: string,
  options: { returnTo?: string; rewrite?: (url: URL) => URL } = {},
): Promise<LapseSignIn> {
  const server = new URL(serverBaseUrl);
  const start = new URL('/auth/oidc/login', server);
  if (options.returnTo !== undefined) start.searchParams.set('returnTo', options.returnTo);
  const result = await walk(start.href, username, {
    stopAt: (url) => url.origin === server.origin && !url.pathname.startsWith('/auth/'),
    ...(options.rewrite ? { rewrite: options.rewrite } : {}),
  });
  const cookieName = result.jar.get(server.origin, '__Host-lapse_session') ? '__Host-lapse_session' : 'lapse_session';
  const cookie = result.jar.get(server.origin, cookieName);
  if (!cookie) {
    const body = await result.final.text().catch(() => '');
    throw new Error(
      `sign-in of ${username} did not end with a session: ${result.steps.map((s) => `${s.status} ${s.url}`).join(' -> ')}\n${body.slice(0, 500)}`,
    );
  }
  const session = await fetch(new URL('/api/v1/auth/session', server), { headers: { cookie: `${cookieName}=${cookie}` } });
  const { csrfToken } = (await session.json()) as { csrfToken: string };
  return { cookie, cookieName, csrfToken, landedAt: `${result.finalUrl.pathname}${result.finalUrl.search}`, steps: result.steps };
}

/**
 * Completes a sign-in that starts at `url` (e.g. the `/auth/cli?...` link `lapse login
 * --no-browser` prints) as `username`: through the OIDC provider, or, with `password`, through
 * the local sign-in form. Follows the final redirect to the CLI's loopback listener too.
 * Returns the last response (the listener's answer).
 */
export async function completeLoginAt(
  url: string,
  username: string,
  options: { password?: string } = {},
): Promise<{ status: number; body: string; steps: BrowserStep[] }> {
  const jar = new CookieJar();
  let result = await walk(url, username, { jar });
  let body = await result.final.text();
  if (result.final.status === 200 && body.includes('<form method="post" action="/auth/login">')) {
    if (options.password === undefined) {
      const sso = /<a id="sso" class="button" href="([^"]+)"/.exec(body);
      if (!sso) throw new Error('the sign-in page offers no single sign-on; pass { password } for the local form');
      result = await walk(new URL(sso[1]!.replace(/&amp;/g, '&'), result.finalUrl).href, username, { jar });
    } else {
      const fields = new URLSearchParams();
      for (const [, name, value] of body.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)) fields.set(name!, value!.replace(/&amp;/g, '&'));
      fields.set('username', username);
      fields.set('password', options.password);
      const post = await fetch(new URL('/auth/login', result.finalUrl), {
        method: 'POST',
        redirect: 'manual',
        body: fields,
        headers: { cookie: jar.header(result.finalUrl) },
      });
      const location = post.headers.get('location');
      if (post.status !== 303 || !location) return { status: post.status, body: await post.text(), steps: result.steps };
      result = await walk(new URL(location, result.finalUrl).href, username, { jar });
    }
    body = await result.final.text();
  }
  return { status: result.final.status, body, steps: result.steps };
}
