import { createHash } from 'node:crypto';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { NAME_PATTERN } from '../../domain/input-schemas.js';
import type { Engine } from '../../engine/index.js';
import { problemSchema } from '../problem.js';

const params = z.object({ target: z.string().min(1).max(63).regex(NAME_PATTERN, 'is not a target name') });

/**
 * What sshd hosts need from an `ssh` target, public like a CA's revocation list: the CA key to
 * trust (`TrustedUserCAKeys`) and the current KRL (`RevokedKeys`), with an ETag so a host polling
 * every minute (`curl -z`/`If-None-Match`) transfers it only when it changed.
 */
export function sshRoutes(engine: Engine): FastifyPluginAsyncZod {
  return async (app) => {
    app.get(
      '/api/v1/ssh/:target/krl',
      {
        config: { auth: { public: 'what sshd hosts fetch: a public key and revoked serials, nothing secret' } },
        schema: {
          tags: ['ssh'],
          summary: "The target's key revocation list, for sshd's RevokedKeys (no authentication: it names only revoked serials)",
          params,
          response: {
            200: z.string().describe('application/octet-stream (OpenSSH KRL)'),
            304: z.null().describe('unchanged since the ETag given'),
            404: problemSchema,
          },
        },
      },
      async (request, reply) => {
        const krl = await engine.hostTrust(request.params.target).revocationList();
        const etag = `"${createHash('sha256').update(krl).digest('base64url')}"`;
        reply.header('etag', etag).header('cache-control', 'no-cache');
        if (request.headers['if-none-match'] === etag) return reply.code(304).send(null);
        return reply.type('application/octet-stream').send(krl as unknown as string);
      },
    );

    app.get(
      '/api/v1/ssh/:target/ca.pub',
      {
        config: { auth: { public: 'what sshd hosts fetch: a public key and revoked serials, nothing secret' } },
        schema: {
          tags: ['ssh'],
          summary: "The target's user CA public key, for sshd's TrustedUserCAKeys",
          params,
          response: { 200: z.string().describe('text/plain: one OpenSSH public key line'), 404: problemSchema },
        },
      },
      async (request, reply) => {
        return reply.type('text/plain; charset=utf-8').send(`${await engine.hostTrust(request.params.target).caPublicKey()}\n`);
      },
    );
  };
}
