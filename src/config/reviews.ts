import { z } from 'zod';
import { REVIEW_DEFAULTS, type ReviewCampaignSettings } from '../domain/access-review.js';
import { duration, entitlementPattern, name, subjectSet, text } from './schema-parts.js';

/**
 * `reviews:` in lapse.yaml (docs/reviews.md): access-review campaigns that open on a schedule.
 * Admins may also open one-off campaigns through the API with the same shape (`campaignInput`).
 */
const DAY = 86_400_000;

const owners = z
  .record(entitlementPattern, subjectSet)
  .default({})
  .refine((o) => Object.keys(o).length <= 200, 'at most 200 owner entries');

/** A campaign's fields besides its schedule: shared by lapse.yaml and the API. */
export const campaignFields = {
  name: name('review campaign'),
  description: text(1000).default(''),
  scope: z
    .object({
      targets: z.array(name('target')).max(200).default([]),
      entitlements: z.array(entitlementPattern).max(500).default([]),
      policies: z.array(name('policy')).max(500).default([]),
      groups: z.array(z.string().min(1).max(256)).max(200).default([]),
    })
    .strict()
    .prefault({}),
  period: duration.optional(),
  deadline: duration.prefault('14d'),
  remind: z.object({ every: duration }).strict().optional(),
  reviewers: z
    .object({ owners, fallback: subjectSet })
    .strict()
    .refine((r) => Object.keys(r.owners).length + r.fallback.users.length + r.fallback.groups.length > 0, {
      message: 'name entitlement owners or a fallback group of reviewers',
    }),
  whenUnanswered: z.enum(REVIEW_DEFAULTS, { message: 'whenUnanswered is keep, remove or flag' }).default('flag'),
  highRisk: z.array(entitlementPattern).max(500).default([]),
};

const campaign = z
  .object({ ...campaignFields, every: duration })
  .strict()
  .refine((c) => c.every >= DAY, { message: 'every must be at least 1d', path: ['every'] })
  .refine((c) => c.deadline < c.every, { message: 'deadline must be shorter than every (one round closes before the next opens)', path: ['deadline'] });

export const reviewsSchema = z
  .array(campaign)
  .max(100)
  .default([])
  .refine((c) => new Set(c.map((x) => x.name)).size === c.length, 'review campaign names must be unique');

/** The parsed fields of one campaign (lapse.yaml or API) as the engine keeps them. */
export function campaignSettings(parsed: Omit<z.output<z.ZodObject<typeof campaignFields>>, never> & { every?: number }): ReviewCampaignSettings {
  const periodMs = parsed.period ?? parsed.every ?? 90 * DAY;
  return {
    name: parsed.name,
    description: parsed.description,
    scope: {
      entitlements: [...parsed.scope.targets.map((t) => `${t}/*`), ...parsed.scope.entitlements],
      policies: parsed.scope.policies,
      groups: parsed.scope.groups,
    },
    everyMs: parsed.every ?? null,
    periodMs,
    durationMs: parsed.deadline,
    remindEveryMs: parsed.remind?.every ?? null,
    reviewers: {
      owners: Object.entries(parsed.reviewers.owners).map(([pattern, set]) => ({ pattern, users: set.users, groups: set.groups })),
      fallback: parsed.reviewers.fallback,
    },
    whenUnanswered: parsed.whenUnanswered,
    highRisk: parsed.highRisk,
  };
}
