import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Change, Engine } from '../../engine/index.js';
import type { AuthService } from '../../auth/index.js';
import { recheckCaller, type Caller } from '../authenticate.js';
import { problemSchema } from '../problem.js';
import { callerOf } from '../authorization.js';
import { readsEverything, canSeeGrant, canSeeRequest } from '../../domain/authorization.js';

const KEEPALIVE_MS = 15_000;
/** A subscriber that cannot keep up is cut off rather than buffered without bound. */
const MAX_QUEUED = 1_000;
/** How often an open stream's credential is checked again, at most (it is also checked before a change is sent). */
export const STREAM_RECHECK_MS = 5_000;
/** A change is sent only to a caller whose credential was found good this recently. */
const FRESH_MS = 1_000;

/** Why the server ended a stream, sent as a last `closed` event so the client knows whether to come back. */
export type StreamEnd = 'unauthenticated' | 'unavailable' | 'overflow' | 'shutdown';

export interface EventStreamOptions {
  /** How often to check an open stream's credential again (default STREAM_RECHECK_MS). */
  readonly recheckMs?: number;
}

/** Whether the caller may hear about this change (the same rule as reading the object). */
async function visible(engine: Engine, caller: Caller, change: Change): Promise<boolean> {
  const roles = engine.config.roles;
  if (readsEverything(roles, caller.principal)) return true;
  if (change.subject.startsWith('req_')) {
    const request = await engine.read.request(change.subject);
    return request !== undefined && canSeeRequest(roles, caller.principal, request);
  }
  const grant = await engine.read.grant(change.subject);
  return grant !== undefined && canSeeGrant(roles, caller.principal, grant);
}

/**
 * `GET /api/v1/events`: Server-Sent Events for request and grant changes the caller may see, in
 * every replica (LISTEN/NOTIFY on PostgreSQL). Each event says what changed; clients fetch the
 * object for its new state. `?subject=` narrows the stream to one request or grant.
 *
 * A stream lives no longer than its credential: it is checked again every few seconds and before
 * any change is sent, and the stream ends (`event: closed`) once the token is revoked or expired,
 * the session signed out or timed out, or the user disabled. What the caller may see follows the
 * roles in force at each change. At shutdown every stream ends with `{"reason":"shutdown"}`.
 */
export function eventRoutes(engine: Engine, auth: AuthService, options: EventStreamOptions = {}): FastifyPluginAsyncZod {
  const recheckMs = options.recheckMs ?? STREAM_RECHECK_MS;
  return async (app) => {
    const open = new Set<(reason: StreamEnd) => void>();
    // NB. An open stream never ends by itself, and the server waits for every connection before it
    // closes: shutdown ends the streams first (saying so) instead of waiting for browsers to leave.
    app.addHook('preClose', async () => {
      for (const end of [...open]) end('shutdown');
    });

    app.get(
      '/api/v1/events',
      {
        config: { auth: { scope: 'read' } },
        schema: {
          tags: ['events'],
          summary: 'Live request and grant changes (text/event-stream)',
          description:
            'Events are named `request` or `grant`; data is JSON {"id","action","at"}. A comment line every 15 s keeps proxies from closing the stream. ' +
            'The credential is checked again every 5 s and before each change: when it no longer holds, or the server shuts down, a last event `closed` with data {"reason":"unauthenticated"|"unavailable"|"overflow"|"shutdown"} ends the stream.',
          security: [{ bearer: [] }],
          querystring: z
            .object({
              subject: z
                .string()
                .max(200)
                .regex(/^((req|grt)_[0-9a-z]{1,60},?)+$/, 'is a comma-separated list of req_/grt_ ids')
                .optional(),
            })
            .strict(),
          response: { 200: z.string().describe('text/event-stream'), 401: problemSchema, 403: problemSchema },
        },
      },
      async (request, reply) => {
        let caller = callerOf(request);
        const only = request.query.subject ? new Set(request.query.subject.split(',').filter(Boolean)) : null;
        const raw = reply.raw;
        reply.hijack();
        let queue = Promise.resolve();
        let queued = 0;
        let closed = false;
        let checkedAt = Date.now();
        let checking: Promise<boolean> | null = null;
        const timers: ReturnType<typeof setInterval>[] = [];
        const close = (reason?: StreamEnd) => {
          if (closed) return;
          closed = true;
          for (const timer of timers) clearInterval(timer);
          open.delete(close);
          unsubscribe();
          if (reason && raw.headersSent && !raw.writableEnded) raw.write(`event: closed\ndata: ${JSON.stringify({ reason })}\n\n`);
          raw.end();
          // NB. At shutdown the connection goes too, or the server would wait for the browser to drop it.
          if (reason === 'shutdown') request.raw.socket?.end();
        };
        /** Whether the credential still holds; ends the stream when it does not. One check at a time. */
        const recheck = (): Promise<boolean> => {
          checking ??= recheckCaller(engine, auth, request, 'read')
            .then((now) => {
              if (!now) return (close('unauthenticated'), false);
              caller = now;
              checkedAt = Date.now();
              return true;
            })
            // NB. Fail closed: a credential that cannot be checked (database down) is not trusted.
            .catch(() => (close('unavailable'), false))
            .finally(() => (checking = null));
          return checking;
        };
        const unsubscribe = await engine.changes.subscribe((change) => {
          if (closed || (only && !only.has(change.subject))) return;
          if (++queued > MAX_QUEUED) return close('overflow');
          // NB. In order, one at a time: visibility checks read the database.
          queue = queue.then(async () => {
            queued -= 1;
            if (closed) return;
            if (Date.now() - checkedAt > FRESH_MS && !(await recheck())) return;
            if (closed || !(await visible(engine, caller, change).catch(() => false))) return;
            const event = change.subject.startsWith('req_') ? 'request' : 'grant';
            raw.write(`event: ${event}\ndata: ${JSON.stringify({ id: change.subject, action: change.action, at: new Date().toISOString() })}\n\n`);
          });
        });
        open.add(close);
        // NB. Headers only once subscribed: a client that acts as soon as the stream opens must not miss its own change.
        raw.writeHead(200, {
          'content-type': 'text/event-stream; charset=utf-8',
          'cache-control': 'no-store',
          connection: 'keep-alive',
          'x-accel-buffering': 'no',
          'x-content-type-options': 'nosniff',
        });
        raw.write(': connected\n\n');
        timers.push(
          setInterval(() => raw.write(': keepalive\n\n'), KEEPALIVE_MS),
          setInterval(() => void recheck(), recheckMs),
        );
        request.raw.on('close', () => close());
      },
    );
  };
}
