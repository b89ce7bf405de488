import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { boundedText } from '../../domain/text.js';
import { parseDuration } from '../../domain/duration.js';
import { LapseError } from '../../domain/errors.js';
import type { Engine } from '../../engine/index.js';
import { problemSchema } from '../problem.js';
import { callerOf } from '../authorization.js';
import { readsEverything } from '../../domain/authorization.js';

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;
const MIN_WINDOW_MS = HOUR_MS;
const MAX_WINDOW_MS = 90 * DAY_MS;
/** Hourly points up to two days (at most 49), daily beyond (at most 91). */
const HOURLY_UP_TO_MS = 2 * DAY_MS;

const iso = z.string().describe('ISO-8601 time');
const count = z.number().int().min(0);

const statsQuery = z
  .object({
    since: boundedText(20).default('24h').describe('How far back from now: a duration from 1h to 90d, such as 24h, 7d or 30d (default 24h)'),
  })
  .strict();

const statsView = z.object({
  scope: z.enum(['all', 'mine']).describe("all: every request and grant (admins and auditors); mine: the caller's own"),
  since: iso.describe('Start of the window'),
  until: iso.describe('End of the window: now, by the database clock'),
  stepMs: z.number().int().describe('Distance between the points of activeOverTime: an hour for windows up to 48h, a day beyond'),
  activeOverTime: z
    .array(z.object({ at: iso, active: count }))
    .describe('Grants active at each point (activated, not yet ended), oldest first; the last point is `until`, the first the earliest one not before `since`'),
  requestsByOutcome: z
    .object({ pending: count, approved: count, denied: count, cancelled: count, timed_out: count })
    .describe('Requests created in the window, by their status now (every kind: access, extension, break-glass)'),
  medianTimeToApproveMs: z
    .number()
    .int()
    .nullable()
    .describe(
      'Median time from request to approval over requests approved in the window that needed a person (auto-approvals and break-glass excluded); null when there are none',
    ),
  approvalsByPeople: count.describe('How many approvals the median is taken over'),
  overdueRevocations: count
    .nullable()
    .describe(
      'Grants whose access should be gone but is not confirmed gone now (active more than 1 s past expiry, or revoking for more than 1 s), the lapse_revocations_overdue metric; null unless the scope is all',
    ),
});

export type StatsView = z.infer<typeof statsView>;

/** The dashboard window: a duration back from now, bounded so the series stays ~100 points or fewer. */
function parseWindow(since: string): { windowMs: number; stepMs: number } {
  const windowMs = parseDuration(since, 'since');
  if (windowMs < MIN_WINDOW_MS || windowMs > MAX_WINDOW_MS) {
    throw new LapseError('validation_failed', `since: "${since}" is ${windowMs < MIN_WINDOW_MS ? 'shorter than an hour' : 'longer than 90 days'}`, {
      where: 'since',
      hint: 'Use a duration from 1h to 90d, such as 24h, 7d or 30d.',
    });
  }
  return { windowMs, stepMs: windowMs <= HOURLY_UP_TO_MS ? HOUR_MS : DAY_MS };
}

/**
 * Figures for the dashboard, computed by the database over every request and grant in the window:
 * everyone's for admins and auditors, the caller's own for anyone else.
 */
export function statsRoutes(engine: Engine): FastifyPluginAsyncZod {
  return async (app) => {
    app.get(
      '/api/v1/stats',
      {
        config: { auth: { scope: 'read' } },
        schema: {
          tags: ['stats'],
          summary: 'Dashboard figures over a window: active grants over time, requests by outcome, median time to approve, overdue revocations',
          description: 'Admins and auditors get figures over everything (scope all); anyone else over their own requests and grants (scope mine).',
          security: [{ bearer: [] }],
          querystring: statsQuery,
          response: { 200: statsView, 400: problemSchema, 401: problemSchema, 403: problemSchema },
        },
      },
      async (request) => {
        const caller = callerOf(request);
        const { windowMs, stepMs } = parseWindow(request.query.since);
        const everything = readsEverything(engine.config.roles, caller.principal);
        // NB. The database's clock, as every lifecycle timestamp is: no skew between "now" and the rows.
        const until = await engine.read.now();
        const since = new Date(until.getTime() - windowMs);
        const [figures, overdue] = await Promise.all([
          engine.read.statistics({ since, until, stepMs, ...(everything ? {} : { principalId: caller.principal.id }) }),
          everything ? engine.overdueRevocations() : Promise.resolve(null),
        ]);
        return {
          scope: everything ? 'all' : 'mine',
          since: since.toISOString(),
          until: until.toISOString(),
          stepMs,
          activeOverTime: figures.activeOverTime.map((point) => ({ at: point.at.toISOString(), active: point.active })),
          requestsByOutcome: figures.requestsByOutcome,
          medianTimeToApproveMs: figures.medianTimeToApproveMs,
          approvalsByPeople: figures.approvalsByPeople,
          overdueRevocations: overdue,
        } satisfies StatsView;
      },
    );
  };
}
