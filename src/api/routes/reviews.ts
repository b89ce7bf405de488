import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { campaignFields, campaignSettings } from '../../config/reviews.js';
import { reviewCampaignId, reviewDecisionInput } from '../../domain/access-review.js';
import type { CampaignView, Engine, ReviewCampaign, ReviewItem } from '../../engine/index.js';
import { callerOf } from '../authorization.js';
import { problemSchema } from '../problem.js';

const subjectSetSchema = z.object({ users: z.array(z.string()), groups: z.array(z.string()) });

const campaignSchema = z.object({
  id: z.string(),
  name: z.string(),
  origin: z.enum(['config', 'api']),
  status: z.enum(['open', 'closed']),
  periodFrom: z.string(),
  periodTo: z.string(),
  openedAt: z.string(),
  openedBy: z.string(),
  deadline: z.string(),
  configVersion: z.string(),
  closedAt: z.string().nullable(),
  closedBy: z.string().nullable(),
  whenUnanswered: z.enum(['keep', 'remove', 'flag']),
  total: z.number().int().optional(),
  decided: z.number().int().optional(),
  overdue: z.boolean().optional(),
});

const itemSchema = z.object({
  id: z.string(),
  campaignId: z.string(),
  kind: z.enum(['eligible', 'used', 'standing']),
  principalId: z.string(),
  target: z.string(),
  entitlement: z.string(),
  policy: z.string().nullable(),
  findingId: z.string().nullable(),
  highRisk: z.boolean(),
  reviewers: subjectSetSchema,
  evidence: z.record(z.string(), z.unknown()),
  decision: z.enum(['keep', 'remove', 'unsure']).nullable(),
  byDefault: z.boolean(),
  justification: z.string().nullable(),
  decidedBy: z.string().nullable(),
  decidedAt: z.string().nullable(),
  outcome: z.enum(['pending', 'kept', 'flagged', 'removed', 'remove_failed', 'change_proposed', 'change_applied']),
  outcomeDetail: z.record(z.string(), z.unknown()),
});

const iso = (date: Date | null) => date?.toISOString() ?? null;

export function campaignOut(c: ReviewCampaign | CampaignView): z.infer<typeof campaignSchema> {
  return {
    id: c.id,
    name: c.name,
    origin: c.origin,
    status: c.status,
    periodFrom: c.periodFrom.toISOString(),
    periodTo: c.periodTo.toISOString(),
    openedAt: c.openedAt.toISOString(),
    openedBy: c.openedBy,
    deadline: c.deadline.toISOString(),
    configVersion: c.configVersion,
    closedAt: iso(c.closedAt),
    closedBy: c.closedBy,
    whenUnanswered: c.settings.whenUnanswered,
    ...('total' in c ? { total: c.total, decided: c.decided, overdue: c.overdue } : {}),
  };
}

export function itemOut(i: ReviewItem): z.infer<typeof itemSchema> {
  return {
    ...i,
    reviewers: { users: [...i.reviewers.users], groups: [...i.reviewers.groups] },
    evidence: { ...i.evidence },
    outcomeDetail: { ...i.outcomeDetail },
    decidedAt: iso(i.decidedAt),
  };
}

const readers = {
  scope: 'read',
  role: 'reader',
  refused: {
    action: 'review.read_refused',
    message: (who: { id: string }) => `${who.id} may not read access-review campaigns`,
    hint: 'Admins and auditors (roles in lapse.yaml) read campaigns; reviewers see their queue at GET /api/v1/reviews/queue.',
  },
} as const;

const admins = {
  scope: 'admin',
  role: 'admin',
  refused: {
    action: 'review.admin_refused',
    message: (who: { id: string }) => `${who.id} is not an admin`,
    hint: 'Only admins (roles.admins) open and close access-review campaigns.',
  },
} as const;

const openBody = z.object({ ...campaignFields }).strict();
const idParams = z.object({ id: reviewCampaignId }).strict();
const errors = { 400: problemSchema, 401: problemSchema, 403: problemSchema, 404: problemSchema, 409: problemSchema };

/**
 * Access reviews (docs/reviews.md): reviewers read their queue and decide (the `approve` scope);
 * admins open and close campaigns; admins and auditors read every campaign and its items.
 */
export function reviewRoutes(engine: Engine): FastifyPluginAsyncZod {
  return async (app) => {
    app.get(
      '/api/v1/reviews/campaigns',
      {
        config: { auth: readers },
        schema: {
          tags: ['reviews'],
          summary: 'Access-review campaigns with their progress, newest first',
          security: [{ bearer: [] }],
          querystring: z.object({ status: z.enum(['open', 'closed']).optional(), limit: z.coerce.number().int().min(1).max(1000).default(100) }).strict(),
          response: { 200: z.object({ campaigns: z.array(campaignSchema) }), ...errors },
        },
      },
      async (request) => ({ campaigns: (await engine.reviewCampaigns(request.query)).map(campaignOut) }),
    );

    app.post(
      '/api/v1/reviews/campaigns',
      {
        config: { auth: admins },
        schema: {
          tags: ['reviews'],
          summary: 'Open a one-off access-review campaign now (recurring ones are defined in lapse.yaml)',
          security: [{ bearer: [] }],
          body: openBody,
          response: { 201: z.object({ campaign: campaignSchema, items: z.number().int() }), ...errors },
        },
      },
      async (request, reply) => {
        const { principal } = callerOf(request);
        const opened = await engine.openReviewCampaign(campaignSettings(request.body), principal.id);
        return reply.code(201).send({ campaign: campaignOut(opened.campaign), items: opened.items });
      },
    );

    app.get(
      '/api/v1/reviews/campaigns/:id',
      {
        config: { auth: readers },
        schema: {
          tags: ['reviews'],
          summary: 'One campaign with every item, its evidence, decision and outcome',
          security: [{ bearer: [] }],
          params: idParams,
          response: { 200: z.object({ campaign: campaignSchema, items: z.array(itemSchema) }), ...errors },
        },
      },
      async (request) => {
        const { campaign, items } = await engine.reviewCampaignItems(request.params.id);
        return { campaign: campaignOut(campaign), items: items.map(itemOut) };
      },
    );

    app.post(
      '/api/v1/reviews/campaigns/:id/close',
      {
        config: { auth: admins },
        schema: {
          tags: ['reviews'],
          summary: 'Close a campaign now: unanswered items get its default (recorded as such), removals are carried out',
          security: [{ bearer: [] }],
          params: idParams,
          response: { 200: z.object({ campaign: campaignSchema, defaulted: z.number().int(), outcomes: z.record(z.string(), z.number().int()) }), ...errors },
        },
      },
      async (request) => {
        const { principal } = callerOf(request);
        const closed = await engine.closeReviewCampaign({ campaignId: request.params.id, by: principal.id });
        return { campaign: campaignOut(closed.campaign), defaulted: closed.defaulted, outcomes: closed.counts };
      },
    );

    app.get(
      '/api/v1/reviews/queue',
      {
        config: { auth: { scope: 'read' } },
        schema: {
          tags: ['reviews'],
          summary: 'Your review queue: undecided items of open campaigns you review (never your own access)',
          security: [{ bearer: [] }],
          querystring: z.object({ campaign: reviewCampaignId.optional(), limit: z.coerce.number().int().min(1).max(1000).default(200) }).strict(),
          response: { 200: z.object({ items: z.array(itemSchema) }), ...errors },
        },
      },
      async (request) => {
        const { principal } = callerOf(request);
        const items = await engine.reviewQueue(principal, {
          limit: request.query.limit,
          ...(request.query.campaign ? { campaignId: request.query.campaign } : {}),
        });
        return { items: items.map(itemOut) };
      },
    );

    app.post(
      '/api/v1/reviews/decisions',
      {
        config: { auth: { scope: 'approve' } },
        schema: {
          tags: ['reviews'],
          summary: 'Decide one or more review items with one justification (all or nothing)',
          security: [{ bearer: [] }],
          body: reviewDecisionInput,
          response: { 200: z.object({ items: z.array(itemSchema) }), ...errors },
        },
      },
      async (request) => {
        const { principal } = callerOf(request);
        const { items, decision, justification } = request.body;
        const decided = await engine.decideReviewItems({ itemIds: items, decision, justification, by: principal });
        return { items: decided.items.map(itemOut) };
      },
    );
  };
}
