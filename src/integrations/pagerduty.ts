import { z } from 'zod';
import type { IntegrationsConfig, PagerDutyConfig } from '../config/types.js';
import { callJson, LookupFailure, shapeProblem } from './http.js';
import { emailOf } from './people.js';

/**
 * "Which of the configured services is this person on call for, now?" from the PagerDuty REST
 * API v2: the person's PagerDuty user (from `pagerduty.users`, else found by email with
 * `GET /users?query=`), then `GET /oncalls` for that user over the current instant. An on-call
 * entry covers a service when its escalation policy or its schedule is one mapped to the service.
 *
 * NB. Plain HTTP through Lapse's transport rather than @pagerduty/pdjs: pdjs builds
 * `https://<server>/` and uses fetch, so it can neither verify against a private CA nor be
 * pointed at a local fake, and it retries on its own clock past our deadline.
 *
 * NB. Only `user_ids[]` filters server-side: PagerDuty ANDs `escalation_policy_ids[]` with
 * `schedule_ids[]`, which would drop entries matching only one of a service's mappings.
 */
const PAGE = 100;
const MAX_PAGES = 5;

const reference = z.object({ id: z.string().max(64) }).passthrough();
const oncallsPage = z.object({
  oncalls: z
    .array(
      z
        .object({
          escalation_policy: reference,
          schedule: reference.nullable().optional(),
          user: reference,
          escalation_level: z.number().int().optional(),
          start: z.string().max(64).nullable().optional(),
          end: z.string().max(64).nullable().optional(),
        })
        .passthrough(),
    )
    .max(PAGE),
  more: z.boolean().optional(),
});
const usersPage = z.object({
  users: z.array(z.object({ id: z.string().max(64), email: z.string().max(320) }).passthrough()).max(PAGE),
});

export async function pagerDutyServices(
  config: PagerDutyConfig,
  people: IntegrationsConfig['people'],
  principalId: string,
  signal: AbortSignal,
  now: Date = new Date(),
): Promise<string[]> {
  const headers = { authorization: `Token token=${config.token}`, accept: 'application/vnd.pagerduty+json;version=2' };
  const get = (path: string) => callJson(config, { method: 'GET', path, headers, secrets: [config.token] }, signal);
  const userId = config.users[principalId] ?? (await findUser(get, principalId, people));
  if (userId === undefined) return [];
  // A one-second window at `now`: PagerDuty returns the entries overlapping it.
  const since = now.toISOString();
  const until = new Date(now.getTime() + 1000).toISOString();
  const onCall = new Set<string>();
  for (let page = 0; page < MAX_PAGES; page++) {
    const query = new URLSearchParams({ 'user_ids[]': userId, since, until, limit: String(PAGE), offset: String(page * PAGE), time_zone: 'UTC' });
    const parsed = oncallsPage.safeParse((await get(`/oncalls?${query}`)).json);
    if (!parsed.success) throw shapeProblem('PagerDuty GET /oncalls', parsed.error.issues);
    for (const entry of parsed.data.oncalls) {
      if (entry.user.id !== userId) continue;
      for (const [service, covers] of Object.entries(config.services)) {
        if (covers.escalationPolicies.includes(entry.escalation_policy.id) || (entry.schedule && covers.schedules.includes(entry.schedule.id))) {
          onCall.add(service);
        }
      }
    }
    if (!parsed.data.more) break;
  }
  return [...onCall].sort();
}

/** The PagerDuty user with exactly this principal's email; undefined when nobody has it. */
async function findUser(
  get: (path: string) => Promise<{ json: unknown }>,
  principalId: string,
  people: IntegrationsConfig['people'],
): Promise<string | undefined> {
  const email = emailOf(principalId, people);
  if (email === undefined) {
    throw new LookupFailure(`no PagerDuty user for ${principalId}: map it in integrations.pagerduty.users or set integrations.people`);
  }
  const parsed = usersPage.safeParse((await get(`/users?${new URLSearchParams({ query: email, limit: String(PAGE) })}`)).json);
  if (!parsed.success) throw shapeProblem('PagerDuty GET /users', parsed.error.issues);
  return parsed.data.users.find((u) => u.email.toLowerCase() === email)?.id;
}
