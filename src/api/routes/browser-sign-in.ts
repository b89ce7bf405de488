import type { FastifyReply, FastifyRequest } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { boundedText } from '../../domain/text.js';
import { isHttps, PASSWORD_MAX_LENGTH, type AuthService, type SignInUser } from '../../auth/index.js';
import { cliLoginRequestSchema, loopbackRedirect, toCliLoginRequest } from '../../auth/cli-login.js';
import type { CliLoginRequest, OidcSignIn } from '../../auth/oidc.js';
import { isLapseError, LapseError } from '../../domain/errors.js';
import type { Engine } from '../../engine/index.js';
import { escapeHtml, hiddenFields, sendPage } from '../pages.js';
import { problemSchema } from '../problem.js';
import { assertSameOriginForm, publicBaseUrl, safeReturnTo } from '../public-url.js';
import { startSession } from '../sign-in.js';

// NB. returnTo is not refused for odd characters: safeReturnTo turns anything that is not a plain
// path on this server into "/", so a mangled link still signs the person in.
const returnToField = z.string().max(2048).optional();
const returnToQuery = z.object({ returnTo: returnToField }).strict();
const oidcLoginQuery = z
  .object({ returnTo: returnToField, port: boundedText(5).optional(), state: boundedText(128).optional(), code_challenge: boundedText(64).optional() })
  .strict();
const callbackQuery = z.object({
  code: boundedText(4096).optional(),
  state: boundedText(1024).optional(),
  iss: boundedText(2048).optional(),
  error: boundedText(256).optional(),
  error_description: boundedText(1024).optional(),
  session_state: boundedText(1024).optional(),
});
const loginForm = z
  .object({
    username: boundedText(256).default(''),
    password: z.string().max(PASSWORD_MAX_LENGTH).default(''),
    returnTo: returnToField,
    port: boundedText(5).optional(),
    state: boundedText(128).optional(),
    code_challenge: boundedText(64).optional(),
  })
  .strict();
const pageErrors = { 400: problemSchema, 401: problemSchema, 403: problemSchema, 404: problemSchema, 429: problemSchema, 502: problemSchema };

/** The CLI fields of a form or query, validated, or undefined when it is not a CLI sign-in. */
function cliRequestFrom(fields: { port?: string | undefined; state?: string | undefined; code_challenge?: string | undefined }): CliLoginRequest | undefined {
  if (fields.port === undefined && fields.state === undefined && fields.code_challenge === undefined) return undefined;
  const parsed = cliLoginRequestSchema.safeParse({ port: fields.port, state: fields.state, code_challenge: fields.code_challenge });
  if (!parsed.success)
    throw new LapseError('validation_failed', `this CLI sign-in link is not valid: ${parsed.error.issues[0]?.message}`, { hint: 'Run `lapse login` again.' });
  return toCliLoginRequest(parsed.data);
}

function cliFields(cli: CliLoginRequest | undefined) {
  return cli ? { port: cli.port, state: cli.state, code_challenge: cli.codeChallenge } : {};
}

/**
 * Browser sign-in before the portal exists: a local login page, the OIDC redirect and callback,
 * and `/auth/cli`, where `lapse login` sends the browser (the outcome goes to the CLI's loopback
 * listener as a one-time code, never into the browser).
 */
export function browserSignInRoutes(engine: Engine, auth: AuthService, oidc: () => OidcSignIn | undefined): FastifyPluginAsyncZod {
  return async (app) => {
    const flowCookie = () => (isHttps(engine.config.auth) ? '__Host-lapse_oidc' : 'lapse_oidc');

    const loginPage = (reply: FastifyReply, status: number, options: { returnTo: string; cli?: CliLoginRequest | undefined; error?: string }) => {
      const settings = engine.config.auth;
      const ssoQuery = new URLSearchParams(
        options.cli ? { port: String(options.cli.port), state: options.cli.state, code_challenge: options.cli.codeChallenge } : { returnTo: options.returnTo },
      );
      const sso = settings.oidc
        ? `<p><a id="sso" class="button" href="/auth/oidc/login?${escapeHtml(ssoQuery.toString())}">Sign in with single sign-on</a></p>`
        : '';
      const local = settings.local.enabled
        ? `<form method="post" action="/auth/login">${hiddenFields(options.cli ? cliFields(options.cli) : { returnTo: options.returnTo })}
<label for="username">User name</label><input id="username" name="username" autocomplete="username" required maxlength="256">
<label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required maxlength="${PASSWORD_MAX_LENGTH}">
<button type="submit">Sign in</button></form>`
        : '';
      const intro = options.cli ? '<p>Sign in to finish <code>lapse login</code> in your terminal.</p>' : '';
      const error = options.error ? `<p class="error" role="alert">${escapeHtml(options.error)}</p>` : '';
      return sendPage(reply, status, 'Sign in to Lapse', `${intro}${error}${sso}${local}`);
    };

    /** A CLI sign-in ends with a one-time code for the loopback listener, audited. */
    const finishCli = async (reply: FastifyReply, request: FastifyRequest, user: SignInUser, cli: CliLoginRequest, method: string) => {
      const code = await auth.issueCliLoginCode(user, cli, method, request.ip);
      return reply.redirect(loopbackRedirect(cli, code), 303);
    };

    app.get(
      '/auth/login',
      { config: { auth: { public: 'the sign-in page' } }, schema: { tags: ['auth'], summary: 'The sign-in page (HTML)', querystring: returnToQuery } },
      async (request, reply) => {
        return loginPage(reply, 200, { returnTo: safeReturnTo(request.query.returnTo) });
      },
    );

    app.post(
      '/auth/login',
      {
        config: { auth: { public: 'signing in: the password is the credential' } },
        schema: { tags: ['auth'], summary: 'Sign-in form post (HTML); redirects to returnTo, or to the CLI', body: loginForm, response: pageErrors },
      },
      async (request, reply) => {
        assertSameOriginForm(request);
        const settings = engine.config.auth;
        const cli = cliRequestFrom(request.body);
        const returnTo = safeReturnTo(request.body.returnTo);
        if (!settings.local.enabled) throw new LapseError('not_found', 'local accounts are disabled on this server', { hint: 'Use single sign-on.' });
        let user: SignInUser;
        try {
          user = await auth.checkLocalPassword({ username: request.body.username, password: request.body.password, ip: request.ip }, settings.loginLimits);
        } catch (error) {
          if (isLapseError(error, 'unauthenticated') || isLapseError(error, 'rate_limited')) {
            return loginPage(reply, error.httpStatus, { returnTo, cli, error: error.message });
          }
          throw error;
        }
        if (cli) return finishCli(reply, request, user, cli, 'password');
        await startSession(engine, auth, request, reply, user, 'password');
        return reply.redirect(returnTo, 303);
      },
    );

    app.get(
      '/auth/cli',
      {
        config: { auth: { public: 'signing in for `lapse login`' } },
        schema: {
          tags: ['auth'],
          summary: '`lapse login` opens this: sign in, then the browser is sent to the CLI on 127.0.0.1',
          querystring: cliLoginRequestSchema,
          response: pageErrors,
        },
      },
      async (request, reply) => {
        const cli = toCliLoginRequest(request.query);
        const signIn = oidc();
        if (signIn && !engine.config.auth.local.enabled) return beginOidc(request, reply, signIn, '/', cli);
        return loginPage(reply, 200, { returnTo: '/', cli });
      },
    );

    const beginOidc = async (request: FastifyRequest, reply: FastifyReply, signIn: OidcSignIn, returnTo: string, cli: CliLoginRequest | undefined) => {
      const redirectUri = `${publicBaseUrl(engine.config.auth, request)}/auth/oidc/callback`;
      const flow = await auth.beginOidc(signIn, { redirectUri, returnTo, cli });
      reply.setCookie(flowCookie(), flow.flowSecret, { httpOnly: true, sameSite: 'lax', path: '/', secure: isHttps(engine.config.auth), maxAge: 600 });
      return reply.redirect(flow.url, 302);
    };

    app.get(
      '/auth/oidc/login',
      {
        config: { auth: { public: 'single sign-on starts here' } },
        schema: { tags: ['auth'], summary: 'Start single sign-on: redirects to the identity provider', querystring: oidcLoginQuery, response: pageErrors },
      },
      async (request, reply) => {
        const signIn = oidc();
        if (!signIn)
          throw new LapseError('not_found', 'single sign-on is not configured on this server', { hint: 'Configure auth.oidc, or sign in at /auth/login.' });
        return beginOidc(request, reply, signIn, safeReturnTo(request.query.returnTo), cliRequestFrom(request.query));
      },
    );

    app.get(
      '/auth/oidc/callback',
      {
        config: { auth: { public: "single sign-on: the identity provider's answer is the credential" } },
        schema: { tags: ['auth'], summary: 'Where the identity provider sends the browser back', querystring: callbackQuery, response: pageErrors },
      },
      async (request, reply) => {
        const signIn = oidc();
        if (!signIn) throw new LapseError('not_found', 'single sign-on is not configured on this server');
        const base = publicBaseUrl(engine.config.auth, request);
        const flowSecret = request.cookies[flowCookie()];
        reply.clearCookie(flowCookie(), { httpOnly: true, sameSite: 'lax', path: '/', secure: isHttps(engine.config.auth) });
        let completed;
        try {
          if (request.query.error) {
            throw new LapseError(
              'unauthenticated',
              `the identity provider refused the sign-in: ${request.query.error}${request.query.error_description ? ` (${request.query.error_description})` : ''}`,
              { reason: 'idp error' },
            );
          }
          completed = await auth.completeOidc(signIn, {
            flowSecret,
            callbackUrl: new URL(`${base}${request.url}`),
            redirectUri: `${base}/auth/oidc/callback`,
          });
        } catch (error) {
          const reason = isLapseError(error) ? String(error.details.reason ?? error.code) : 'error';
          await engine.recordSecurityEvent({
            action: 'auth.oidc_failed',
            actor: 'anonymous',
            data: { ip: request.ip, reason, message: error instanceof Error ? error.message.slice(0, 500) : '' },
          });
          throw error;
        }
        if (completed.cli) return finishCli(reply, request, completed.user, completed.cli, 'oidc');
        await startSession(engine, auth, request, reply, completed.user, 'oidc', { groups: completed.user.groups, created: completed.user.created });
        return reply.redirect(safeReturnTo(completed.returnTo), 303);
      },
    );
  };
}
