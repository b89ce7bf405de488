import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { AuthService } from '../../auth/index.js';
import { OidcSignIn } from '../../auth/oidc.js';
import type { OidcConfig } from '../../config/types.js';
import type { Engine } from '../../engine/index.js';
import { publicBaseUrl } from '../public-url.js';
import { authRoutes } from './auth.js';
import { browserSignInRoutes } from './browser-sign-in.js';
import { setupRoutes } from './setup.js';
import { tokenRoutes } from './tokens.js';

/**
 * Every sign-in route: local login, single sign-on, the CLI's browser flow, sessions and sign-out.
 * The OIDC client follows the config in force (a reload with new auth.oidc settings makes a new one).
 */
export function signInRoutes(engine: Engine, auth: AuthService): FastifyPluginAsyncZod {
  return async (app) => {
    let current: { settings: OidcConfig; signIn: OidcSignIn } | undefined;
    const oidc = () => {
      const settings = engine.config.auth.oidc;
      if (!settings) return undefined;
      if (current?.settings !== settings) current = { settings, signIn: new OidcSignIn(settings, app.log) };
      return current.signIn;
    };
    oidc(); // NB. Built now, so the allowInsecureHttp warning is logged at start, not at the first sign-in.
    // The sign-in and setup pages post plain HTML forms (no scripts); other routes take JSON only.
    app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: 16 * 1024 }, (_request, body, done) => {
      done(null, Object.fromEntries(new URLSearchParams(body as string)));
    });
    await app.register(authRoutes(engine, auth, async (request) => (await oidc()?.logoutUrl(`${publicBaseUrl(engine.config.auth, request)}/`)) ?? null));
    await app.register(browserSignInRoutes(engine, auth, oidc));
    await app.register(tokenRoutes(engine, auth));
    await app.register(setupRoutes(engine, auth));
  };
}
