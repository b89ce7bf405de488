import type { KeyObject } from 'node:crypto';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { trustedCheckpointKeys, type VerifyResult } from '../../audit/index.js';
import type { Engine } from '../../engine/index.js';
import { problemSchema } from '../problem.js';
import { callerOf } from '../authorization.js';

const verifyResult = z.object({
  ok: z.boolean(),
  events: z.number().int(),
  lastSeq: z.number().int(),
  checkpoints: z.number().int(),
  lastCheckpoint: z.object({ seq: z.number().int(), at: z.string(), keyId: z.string() }).nullable(),
  problems: z.array(z.object({ seq: z.number().int(), kind: z.string(), message: z.string() })),
  problemsOmitted: z.number().int(),
  checkpointKeyKnown: z
    .boolean()
    .describe(
      'Whether the server knows a checkpoint public key (audit.signingKey, or the key generated in its data directory); without one, checkpoints are reported as unverified',
    ),
});

/**
 * `POST /api/v1/audit/verify`: the portal's "verify chain" button, the same check as `lapse
 * audit verify` (admins and auditors). Callers arriving while a verification runs share its
 * result, so pressing the button repeatedly cannot stack full scans of the log.
 */
export function auditVerifyRoutes(engine: Engine, checkpointKeys?: readonly KeyObject[]): FastifyPluginAsyncZod {
  let running: Promise<VerifyResult> | null = null;
  return async (app) => {
    app.post(
      '/api/v1/audit/verify',
      {
        config: {
          auth: {
            scope: 'read',
            role: 'reader',
            refused: { message: 'only admins and auditors may verify the audit log', hint: 'Ask an auditor; roles come from roles.auditors in the config.' },
          },
        },
        schema: {
          tags: ['audit'],
          summary: 'Recompute the audit hash chain and check its signed checkpoints (admins and auditors)',
          security: [{ bearer: [] }, { session: [] }],
          response: { 200: verifyResult, 401: problemSchema, 403: problemSchema },
        },
      },
      async (request) => {
        const caller = callerOf(request);
        const publicKeys = checkpointKeys ?? trustedCheckpointKeys({ signingKeyPem: engine.config.audit.signingKeyPem }).keys;
        running ??= engine.read.verifyAudit(publicKeys).finally(() => {
          running = null;
        });
        const result = await running;
        await engine.recordSecurityEvent({
          action: 'audit.verified',
          actor: caller.principal.id,
          data: { ok: result.ok, events: result.events, problems: result.problems.length + result.problemsOmitted },
        });
        return { ...result, problems: [...result.problems], checkpointKeyKnown: publicKeys.length > 0 };
      },
    );
  };
}
