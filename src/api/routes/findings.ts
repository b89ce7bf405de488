import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { resourceName as name } from '../../domain/input-schemas.js';
import type { Engine, Finding, ReconcileReport } from '../../engine/index.js';
import { problemSchema } from '../problem.js';
import { callerOf } from '../authorization.js';

const findingsQuery = z
  .object({
    target: name.optional(),
    status: z.enum(['open', 'resolved', 'remediated']).optional(),
    kind: z.enum(['standing', 'missing']).optional(),
    limit: z.coerce.number().int().min(1).max(1000).default(100),
  })
  .strict();

const findingSchema = z.object({
  id: z.string(),
  target: z.string(),
  entitlement: z.string(),
  account: z.string(),
  principalId: z.string(),
  kind: z.enum(['standing', 'missing']),
  grantId: z.string().nullable(),
  status: z.enum(['open', 'resolved', 'remediated']),
  firstSeenAt: z.string(),
  lastSeenAt: z.string(),
  resolvedAt: z.string().nullable(),
  remediatedAt: z.string().nullable(),
  detail: z.record(z.string(), z.unknown()),
});

const runsQuery = z
  .object({
    target: name.optional(),
    limit: z.coerce.number().int().min(1).max(1000).default(20),
  })
  .strict();

const runSchema = z.object({
  id: z.string(),
  target: z.string(),
  trigger: z.enum(['schedule', 'manual']),
  startedAt: z.string(),
  finishedAt: z.string().nullable(),
  listed: z.number().int(),
  standing: z.number().int(),
  missing: z.number().int(),
  opened: z.number().int(),
  resolved: z.number().int(),
  remediated: z.number().int(),
  error: z.string().nullable(),
});

const reconcileBody = z
  .object({
    target: name.optional(),
    /** Overrides the target's `reconcile.remediate` for this run. */
    remediate: z.boolean().optional(),
  })
  .strict()
  .default({});

const reportSchema = z.object({
  target: z.string(),
  runId: z.string(),
  trigger: z.enum(['schedule', 'manual']),
  remediate: z.boolean(),
  startedAt: z.string(),
  finishedAt: z.string(),
  error: z.string().nullable(),
  listed: z.number().int(),
  covered: z.number().int(),
  invalid: z.number().int(),
  opened: z.number().int(),
  resolved: z.number().int(),
  remediated: z.number().int(),
  raced: z.number().int(),
  findings: z.array(findingSchema),
});

function findingOut(finding: Finding): z.infer<typeof findingSchema> {
  const iso = (date: Date | null) => date?.toISOString() ?? null;
  return {
    ...finding,
    detail: { ...finding.detail },
    firstSeenAt: finding.firstSeenAt.toISOString(),
    lastSeenAt: finding.lastSeenAt.toISOString(),
    resolvedAt: iso(finding.resolvedAt),
    remediatedAt: iso(finding.remediatedAt),
  };
}

function reportOut(report: ReconcileReport): z.infer<typeof reportSchema> {
  return { ...report, startedAt: report.startedAt.toISOString(), finishedAt: report.finishedAt.toISOString(), findings: report.findings.map(findingOut) };
}

/**
 * Reconciliation findings (drift between targets and grants), the record of runs, and running a
 * reconciliation now. Findings name accounts and who holds what, so only admins and auditors read
 * them (and the runs); only admins
 * (with an `admin`-scoped credential) start a run, since a run may remove access.
 */
export function findingRoutes(engine: Engine): FastifyPluginAsyncZod {
  return async (app) => {
    app.get(
      '/api/v1/findings',
      {
        config: {
          auth: {
            scope: 'read',
            role: 'reader',
            refused: {
              action: 'findings.list_refused',
              message: (who) => `${who.id} may not read reconciliation findings`,
              hint: 'Admins and auditors (roles in lapse.yaml) read findings.',
            },
          },
        },
        schema: {
          tags: ['reconciliation'],
          summary: 'Reconciliation findings: standing access and missing access, most recently seen first',
          security: [{ bearer: [] }],
          querystring: findingsQuery,
          response: { 200: z.object({ findings: z.array(findingSchema) }), 400: problemSchema, 401: problemSchema, 403: problemSchema },
        },
      },
      async (request) => {
        const findings = await engine.listFindings(request.query);
        return { findings: findings.map(findingOut) };
      },
    );

    app.get(
      '/api/v1/reconcile/runs',
      {
        config: {
          auth: {
            scope: 'read',
            role: 'reader',
            refused: {
              action: 'findings.list_refused',
              message: (who) => `${who.id} may not read reconciliation runs`,
              hint: 'Admins and auditors (roles in lapse.yaml) read reconciliation runs.',
            },
          },
        },
        schema: {
          tags: ['reconciliation'],
          summary: 'Recent reconciliation runs (newest first): when each target was last compared, what was seen, errors',
          security: [{ bearer: [] }],
          querystring: runsQuery,
          response: { 200: z.object({ runs: z.array(runSchema) }), 400: problemSchema, 401: problemSchema, 403: problemSchema },
        },
      },
      async (request) => {
        const runs = await engine.listReconcileRuns(request.query);
        return { runs: runs.map((run) => ({ ...run, startedAt: run.startedAt.toISOString(), finishedAt: run.finishedAt?.toISOString() ?? null })) };
      },
    );

    app.post(
      '/api/v1/reconcile',
      {
        config: {
          auth: {
            scope: 'admin',
            role: 'admin',
            refused: {
              action: 'reconcile.refused',
              message: (who) => `${who.id} is not an admin`,
              hint: 'Only admins (roles.admins) start a reconciliation; it runs on its own every reconcile.interval.',
            },
          },
        },
        schema: {
          tags: ['reconciliation'],
          summary: 'Reconcile one target (or all) now; answers when the run is done',
          security: [{ bearer: [] }],
          body: reconcileBody,
          response: { 200: z.object({ reports: z.array(reportSchema) }), 400: problemSchema, 401: problemSchema, 403: problemSchema, 404: problemSchema },
        },
      },
      async (request) => {
        const { principal } = callerOf(request);
        const { target, remediate } = request.body ?? {};
        await engine.recordSecurityEvent({
          action: 'reconcile.requested',
          actor: principal.id,
          ...(target ? { subject: target } : {}),
          data: { target: target ?? '*', ...(remediate !== undefined ? { remediate } : {}) },
        });
        const reports = await engine.reconcile(target, { actor: principal.id, ...(remediate !== undefined ? { remediate } : {}) });
        return { reports: reports.map(reportOut) };
      },
    );
  };
}
