import { z } from 'zod';
import type { IntegrationsConfig, JiraConfig } from '../config/types.js';
import type { TicketFact } from '../domain/policy/index.js';
import { callJson, shapeProblem } from './http.js';
import { emailOf } from './people.js';

/**
 * A Jira Cloud issue as a ticket fact: `GET /rest/api/3/issue/{key}?fields=summary,status,assignee`
 * with basic auth (account email : API token). 404 is "does not exist" (Jira says the same when the
 * account may not browse the project: give it Browse Projects on the projects tickets come from).
 * Open: the status is one of `openStatuses`, or, by default, not in Jira's "done" category.
 *
 * NB. Plain HTTP through Lapse's transport rather than jira.js: one GET does not need the
 * client, and the transport keeps one set of TLS rules (private CA, no skip) and a hard deadline.
 */
const JIRA_KEY = /^[A-Za-z][A-Za-z0-9_]{0,49}-[0-9]{1,18}$/;

const issue = z.object({
  key: z.string().max(80),
  fields: z.object({
    summary: z.string().max(10_000).nullable().optional(),
    status: z
      .object({
        name: z.string().max(200),
        statusCategory: z
          .object({ key: z.string().max(64) })
          .passthrough()
          .optional(),
      })
      .passthrough(),
    assignee: z
      .object({ accountId: z.string().max(128).optional(), emailAddress: z.string().max(320).optional(), displayName: z.string().max(300).optional() })
      .passthrough()
      .nullable()
      .optional(),
  }),
});

export async function jiraTicket(
  config: JiraConfig,
  people: IntegrationsConfig['people'],
  key: string,
  principalId: string,
  signal: AbortSignal,
): Promise<TicketFact> {
  const base = { system: 'jira' as const, key, checked: true, status: '', summary: '', assignee: '', assignedToRequester: false };
  // NB. A key that cannot be a Jira key is never sent: it would become part of a URL path.
  if (!JIRA_KEY.test(key)) return { ...base, exists: false, open: false };
  const authorization = `Basic ${Buffer.from(`${config.email}:${config.apiToken}`).toString('base64')}`;
  const { status, json } = await callJson(
    config,
    {
      method: 'GET',
      path: `/rest/api/3/issue/${encodeURIComponent(key.toUpperCase())}?fields=summary,status,assignee`,
      headers: { authorization },
      accept: [404],
      secrets: [config.apiToken, authorization.slice(6)],
    },
    signal,
  );
  if (status === 404) return { ...base, exists: false, open: false };
  const parsed = issue.safeParse(json);
  if (!parsed.success) throw shapeProblem(`Jira issue ${key}`, parsed.error.issues);
  const { fields } = parsed.data;
  const statusName = fields.status.name;
  const open =
    config.openStatuses.length > 0
      ? config.openStatuses.some((s) => s.toLowerCase() === statusName.toLowerCase())
      : fields.status.statusCategory?.key !== 'done';
  const assignee = fields.assignee ?? undefined;
  const email = emailOf(principalId, people);
  const account = config.accounts[principalId];
  const assignedToRequester =
    assignee !== undefined &&
    ((account !== undefined && assignee.accountId === account) || (email !== undefined && assignee.emailAddress?.toLowerCase() === email));
  return {
    ...base,
    exists: true,
    open,
    status: statusName,
    summary: (fields.summary ?? '').slice(0, 500),
    assignee: assignee?.emailAddress ?? assignee?.displayName ?? '',
    assignedToRequester,
  };
}
