import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { explainPolicies } from '../../domain/policy/index.js';
import type { Engine } from '../../engine/index.js';
import { readsEverything, refuseRole } from '../access-rules.js';
import { authenticate } from '../authenticate.js';
import { problemSchema } from '../problem.js';

const subjectSet = z.object({ users: z.array(z.string()), groups: z.array(z.string()) });
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
    }),
  ),
  roles: z.object({ admins: subjectSet, auditors: subjectSet }),
  breakGlass: z.object({ enabled: z.boolean(), subjects: subjectSet, entitlements: z.array(z.string()), maxDurationMs: z.number().int() }),
});

/** A read-only view of the configuration in force, without secrets (admins and auditors). */
export function configRoutes(engine: Engine): FastifyPluginAsyncZod {
  return async (app) => {
    app.get(
      '/api/v1/config',
      {
        schema: {
          tags: ['config'],
          summary: 'The configuration in force: targets, entitlements, who may get what on which terms',
          security: [{ bearer: [] }],
          response: { 200: configView, 401: problemSchema, 403: problemSchema },
        },
      },
      async (request) => {
        const caller = await authenticate(engine, request, 'read');
        const config = engine.config;
        if (!readsEverything(config, caller.principal)) {
          await refuseRole(engine, caller.principal, '/api/v1/config', 'only admins and auditors may read the configuration', 'GET /api/v1/catalogue shows what you may request.');
        }
        const targets = [...config.targets.values()];
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
            entitlements: [...t.entitlements.values()].map((e) => ({ name: e.name, description: e.description, labels: { ...e.labels } })),
          })),
          policies: explainPolicies(config.policies, targets.flatMap((t) => [...t.entitlements.keys()].map((name) => ({ target: t.name, name })))).map((p) => ({
            ...p,
            subjects: copy(p.subjects),
            requirements: [...p.requirements],
          })),
          roles: { admins: copy(config.roles.admins), auditors: copy(config.roles.auditors) },
          breakGlass: { enabled: config.breakGlass.enabled, subjects: copy(config.breakGlass.subjects), entitlements: [...config.breakGlass.entitlements], maxDurationMs: config.breakGlass.maxDurationMs },
        };
      },
    );
  };
}
