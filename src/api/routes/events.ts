import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Change, Engine } from '../../engine/index.js';
import { getGrant, getRequest } from '../../store/index.js';
import { canSeeGrant, canSeeRequest, readsEverything } from '../access-rules.js';
import { authenticate, type Caller } from '../authenticate.js';
import { problemSchema } from '../problem.js';

const KEEPALIVE_MS = 15_000;
/** A subscriber that cannot keep up is cut off rather than buffered without bound. */
const MAX_QUEUED = 1_000;

/** Whether the caller may hear about this change (the same rule as reading the object). */
async function visible(engine: Engine, caller: Caller, change: Change): Promise<boolean> {
  const config = engine.config;
  if (readsEverything(config, caller.principal)) return true;
  if (change.subject.startsWith('req_')) {
    const request = await getRequest(engine.store.db, change.subject);
    return request !== undefined && canSeeRequest(config, caller.principal, request);
  }
  const grant = await getGrant(engine.store.db, change.subject);
  return grant !== undefined && canSeeGrant(config, caller.principal, grant);
}

/**
 * `GET /api/v1/events`: Server-Sent Events for request and grant changes the caller may see, in
 * every replica (LISTEN/NOTIFY on PostgreSQL). Each event says what changed; clients fetch the
 * object for its new state. `?subject=` narrows the stream to one request or grant.
 */
export function eventRoutes(engine: Engine): FastifyPluginAsyncZod {
  return async (app) => {
    app.get(
      '/api/v1/events',
      {
        schema: {
          tags: ['events'],
          summary: 'Live request and grant changes (text/event-stream)',
          description: 'Events are named `request` or `grant`; data is JSON {"id","action","at"}. A comment line every 15 s keeps proxies from closing the stream.',
          security: [{ bearer: [] }],
          querystring: z.object({ subject: z.string().max(200).regex(/^((req|grt)_[0-9a-z]{1,60},?)+$/, 'is a comma-separated list of req_/grt_ ids').optional() }).strict(),
          response: { 200: z.string().describe('text/event-stream'), 401: problemSchema, 403: problemSchema },
        },
      },
      async (request, reply) => {
        const caller = await authenticate(engine, request, 'read');
        const only = request.query.subject ? new Set(request.query.subject.split(',').filter(Boolean)) : null;
        const raw = reply.raw;
        reply.hijack();
        let queue = Promise.resolve();
        let queued = 0;
        let closed = false;
        const close = () => {
          if (closed) return;
          closed = true;
          clearInterval(keepalive);
          unsubscribe();
          raw.end();
        };
        const unsubscribe = await engine.changes.subscribe((change) => {
          if (closed || (only && !only.has(change.subject))) return;
          if (++queued > MAX_QUEUED) return close();
          // NB. In order, one at a time: visibility checks read the database.
          queue = queue.then(async () => {
            queued -= 1;
            if (closed || !(await visible(engine, caller, change).catch(() => false))) return;
            const event = change.subject.startsWith('req_') ? 'request' : 'grant';
            raw.write(`event: ${event}\ndata: ${JSON.stringify({ id: change.subject, action: change.action, at: new Date().toISOString() })}\n\n`);
          });
        });
        // NB. Headers only once subscribed: a client that acts as soon as the stream opens must not miss its own change.
        raw.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', connection: 'keep-alive', 'x-accel-buffering': 'no' });
        raw.write(': connected\n\n');
        const keepalive = setInterval(() => raw.write(': keepalive\n\n'), KEEPALIVE_MS);
        request.raw.on('close', close);
      },
    );
  };
}
