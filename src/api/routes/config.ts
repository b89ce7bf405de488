import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { resourceName } from '../../domain/input-schemas.js';
import { explainPolicies } from '../../domain/policy/index.js';
import type { Engine } from '../../engine/index.js';
import { problemSchema } from '../problem.js';
import { callerOf } from '../authorization.js';

const subjectSet = z.object({ users: z.array(z.string()), groups: z.array(z.string()) });
const targetCheckView = z
  .object({
    status: z.enum(['ok', 'failed', 'pending']).describe('pending: not checked since start or the last reload'),
    problem: z.string().nullable().describe("What is missing or wrong (e.g. the privilege Lapse's account lacks), with how to fix it"),
    code: z.string().nullable(),
    checkedAt: z.string().nullable(),
    durationMs: z.number().int().nullable(),
  })
  .describe('The latest target check: can Lapse reach the target with the privileges it needs (run at start, on reload, and on demand)');
const configView = z.object({
  version: z.string().describe('sha256 of the config in force (the "policy version" each decision records)'),
  source: z.string(),
  targets: z.array(
    z.object({
      name: z.string(),
      connector: z.string(),
      description: z.string(),
      labels: z.record(z.string(), z.string()),
      settingKeys: z.array(z.string()).describe('Names only: values can hold resolved secrets and are never shown'),
      check: targetCheckView,
      entitlements: z.array(z.object({ name: z.string(), description: z.string(), labels: z.record(z.string(), z.string()) })),
    }),
  ),
  policies: z.array(
    z.object({
      entitlement: z.string(),
      policy: z.string(),
      subjects: subjectSet,
      defaultDuration: z.string(),
      maxDuration: z.string(),
      approval: z.string(),
      requirements: z.array(z.string()),
      conditions: z.string().nullable(),
      lookups: z.array(z.string()).describe('Facts looked up in other systems at request time ("on-call", "ticket in jira"); see docs/integrations.md'),
    }),
  ),
  roles: z.object({ admins: subjectSet, auditors: subjectSet }),
  breakGlass: z.object({ enabled: z.boolean(), subjects: subjectSet, entitlements: z.array(z.string()), maxDurationMs: z.number().int() }),
});

type TargetCheckRow = ReturnType<Engine['targetChecks']>[number];

function checkView(row: TargetCheckRow | undefined): z.infer<typeof targetCheckView> {
  const check = row?.check ?? null;
  if (check === null) return { status: 'pending', problem: null, code: null, checkedAt: null, durationMs: null };
  return {
    status: check.ok ? 'ok' : 'failed',
    problem: check.problem,
    code: check.code,
    checkedAt: check.checkedAt.toISOString(),
    durationMs: check.durationMs,
  };
}

/** A read-only view of the configuration in force, without secrets (admins and auditors). */
export function configRoutes(engine: Engine): FastifyPluginAsyncZod {
  return async (app) => {
    app.post(
      '/api/v1/config/targets/check',
      {
        config: {
          auth: {
            scope: 'admin',
            role: 'admin',
            refused: { message: 'only admins may run the target checks', hint: 'The results of the last checks are in GET /api/v1/config.' },
          },
        },
        schema: {
          tags: ['config'],
          summary: "Run the target checks now (admins): each target's connectivity and the privileges Lapse needs there",
          security: [{ bearer: [] }],
          body: z.object({ target: resourceName.optional() }).strict().optional(),
          response: {
            200: z.object({ targets: z.array(z.object({ name: z.string(), connector: z.string(), check: targetCheckView })) }),
            400: problemSchema,
            401: problemSchema,
            403: problemSchema,
            404: problemSchema,
          },
        },
      },
      async (request) => {
        const caller = callerOf(request);
        const target = request.body?.target;
        const results = await engine.checkTargets(target);
        await engine.recordSecurityEvent({
          action: 'target.checked',
          actor: caller.principal.id,
          data: { target: target ?? '*', failed: results.filter((r) => !r.ok).map((r) => r.target) },
        });
        const rows = engine.targetChecks().filter((row) => target === undefined || row.target === target);
        return { targets: rows.map((row) => ({ name: row.target, connector: row.connector, check: checkView(row) })) };
      },
    );

    app.get(
      '/api/v1/config',
      {
        config: {
          auth: {
            scope: 'read',
            role: 'reader',
            refused: { message: 'only admins and auditors may read the configuration', hint: 'GET /api/v1/catalogue shows what you may request.' },
          },
        },
        schema: {
          tags: ['config'],
          summary: 'The configuration in force: targets, entitlements, who may get what on which terms',
          security: [{ bearer: [] }],
          response: { 200: configView, 401: problemSchema, 403: problemSchema },
        },
      },
      async () => {
        const config = engine.config;
        const targets = [...config.targets.values()];
        const checks = new Map(engine.targetChecks().map((row) => [row.target, row]));
        const copy = (set: { users: readonly string[]; groups: readonly string[] }) => ({ users: [...set.users], groups: [...set.groups] });
        return {
          version: config.version,
          source: config.source,
          targets: targets.map((t) => ({
            name: t.name,
            connector: t.connector,
            description: t.description,
            labels: { ...t.labels },
            settingKeys: Object.keys(t.settings).sort(),
            check: checkView(checks.get(t.name)),
            entitlements: [...t.entitlements.values()].map((e) => ({ name: e.name, description: e.description, labels: { ...e.labels } })),
          })),
          policies: explainPolicies(
            config.policies,
            targets.flatMap((t) => [...t.entitlements.keys()].map((name) => ({ target: t.name, name }))),
          ).map((p) => ({
            ...p,
            subjects: copy(p.subjects),
            requirements: [...p.requirements],
            lookups: [...p.lookups],
          })),
          roles: { admins: copy(config.roles.admins), auditors: copy(config.roles.auditors) },
          breakGlass: {
            enabled: config.breakGlass.enabled,
            subjects: copy(config.breakGlass.subjects),
            entitlements: [...config.breakGlass.entitlements],
            maxDurationMs: config.breakGlass.maxDurationMs,
          },
        };
      },
    );
  };
}
