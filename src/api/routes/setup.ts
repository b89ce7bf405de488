import type { FastifyReply, FastifyRequest } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { boundedText } from '../../domain/text.js';
import { PASSWORD_MAX_LENGTH, type AuthService } from '../../auth/index.js';
import { firstAdminRule } from '../../auth/setup.js';
import { isLapseError, LapseError } from '../../domain/errors.js';
import { inSubjectSet } from '../../domain/principal.js';
import type { Engine } from '../../engine/index.js';
import { escapeHtml, hiddenFields, sendPage } from '../pages.js';
import { problemSchema } from '../problem.js';
import { assertSameOriginForm } from '../public-url.js';
import { startSession } from '../sign-in.js';

const setupBody = z
  .object({ token: boundedText(128).min(1), username: boundedText(128).min(1), password: z.string().min(1).max(PASSWORD_MAX_LENGTH) })
  .strict();
const setupResponse = z.object({ user: z.object({ name: z.string(), groups: z.array(z.string()) }), csrfToken: z.string() });

/** First start: the one-time link `lapse serve` prints creates the first admin (JSON API and a minimal page). */
export function setupRoutes(engine: Engine, auth: AuthService): FastifyPluginAsyncZod {
  return async (app) => {
    const setUp = async (request: FastifyRequest, reply: FastifyReply, input: z.output<typeof setupBody>) => {
      try {
        const user = await auth.completeSetup(engine.config, input, request.ip);
        return { user, session: await startSession(engine, auth, request, reply, user, 'setup') };
      } catch (error) {
        await engine.recordSecurityEvent({
          action: 'setup.refused',
          actor: 'anonymous',
          data: { ip: request.ip, reason: isLapseError(error) ? error.code : 'error' },
        });
        throw error;
      }
    };

    app.post(
      '/api/v1/setup',
      {
        config: { auth: { public: 'first start: the one-time setup token is the credential' } },
        schema: {
          tags: ['auth'],
          summary: 'First start: create the first admin with the one-time setup token',
          body: setupBody,
          response: { 201: setupResponse, 400: problemSchema, 401: problemSchema, 409: problemSchema },
        },
      },
      async (request, reply) => {
        const { user, session } = await setUp(request, reply, request.body);
        return reply.code(201).send({ user: { name: user.name, groups: [...user.groups] }, csrfToken: session.csrfToken });
      },
    );

    app.get(
      '/setup',
      {
        config: { auth: { public: 'first start: the one-time setup token is the credential' } },
        schema: { tags: ['auth'], summary: 'First start: the setup page (HTML)', querystring: z.object({ token: boundedText(128).optional() }).strict() },
      },
      async (request, reply) => {
        if (!(await auth.needsFirstAdmin(engine.config)))
          return sendPage(reply, 404, 'Already set up', '<p>Lapse already has an admin. <a href="/auth/login">Sign in</a>.</p>');
        return sendPage(
          reply,
          200,
          'Set up Lapse',
          `<p>Create the first admin. ${escapeHtml(firstAdminRule(engine.config))}</p><form method="post" action="/setup">${hiddenFields({ token: request.query.token ?? '' })}
<label for="username">User name</label><input id="username" name="username" required maxlength="128" autocomplete="username">
<label for="password">Password (at least 12 characters)</label><input id="password" name="password" type="password" required minlength="12" maxlength="${PASSWORD_MAX_LENGTH}" autocomplete="new-password">
<button type="submit">Create admin</button></form>`,
        );
      },
    );

    app.post(
      '/setup',
      {
        config: { auth: { public: 'first start: the one-time setup token is the credential' } },
        schema: { tags: ['auth'], summary: 'First start: the setup form post (HTML)', body: setupBody },
      },
      async (request, reply) => {
        assertSameOriginForm(request);
        try {
          const { user } = await setUp(request, reply, request.body);
          // What the new admin can ask for right away, and where that is decided.
          const theirs = engine.config.policies.policies
            .map((p) => p.definition)
            .filter((p) => inSubjectSet({ id: user.name, groups: user.groups }, p.subjects));
          const canRequest =
            theirs.length > 0
              ? `<p>Policies you can request under now: ${theirs.map((p) => `<code>${escapeHtml(p.name)}</code> (${p.entitlements.map(escapeHtml).join(', ')})`).join('; ')}.</p>`
              : `<p>No policy names you or your groups (${escapeHtml(user.groups.join(', ') || 'none')}) yet, so there is nothing for you to request.</p>`;
          return sendPage(
            reply,
            201,
            'Lapse is set up',
            `<p>${escapeHtml(user.name)} is the first admin and is signed in.</p>${canRequest}` +
              '<p>Who may request what, for how long and with whose approval is decided by the <code>policies:</code> section of lapse.yaml (docs/policies.md); <code>lapse policy test</code> checks a change before you reload.</p>' +
              '<p><a href="/">Open the portal</a> · sign in to the CLI with <code>lapse login</code>.</p>',
          );
        } catch (error) {
          if (error instanceof LapseError)
            return sendPage(
              reply,
              error.httpStatus,
              'Setup failed',
              `<p class="error">${escapeHtml(error.message)}</p><p>${escapeHtml(String(error.details.hint ?? ''))}</p>`,
            );
          throw error;
        }
      },
    );
  };
}
