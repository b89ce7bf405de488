import { z } from 'zod';
import type { IntegrationsConfig, ServiceNowConfig } from '../config/types.js';
import type { TicketFact } from '../domain/policy/index.js';
import { callJson, shapeProblem } from './http.js';
import { emailOf } from './people.js';

/**
 * A ServiceNow record as a ticket fact, through the Table API:
 * `GET /api/now/table/<table>?sysparm_query=number=<key>` with basic auth or an OAuth bearer
 * token, asking only for the fields used and both values and labels (`sysparm_display_value=all`).
 * Open: the `state` value is in `openStates`. Assigned to the requester: the assignee's user name
 * is the principal id, or their email is the principal's.
 */
const NUMBER = /^[A-Za-z]{2,10}[0-9]{1,20}$/;
const FIELDS = 'number,state,short_description,assigned_to.email,assigned_to.user_name,assigned_to';

const field = z
  .object({ value: z.string().max(10_000).nullable().optional(), display_value: z.string().max(10_000).nullable().optional() })
  .passthrough()
  .optional();
const answer = z.object({
  result: z
    .array(
      z
        .object({
          number: field,
          state: field,
          short_description: field,
          'assigned_to.email': field,
          'assigned_to.user_name': field,
          assigned_to: field,
        })
        .passthrough(),
    )
    .max(1),
});

export async function serviceNowTicket(
  config: ServiceNowConfig,
  people: IntegrationsConfig['people'],
  key: string,
  principalId: string,
  signal: AbortSignal,
): Promise<TicketFact> {
  const base = { system: 'servicenow' as const, key, checked: true, status: '', summary: '', assignee: '', assignedToRequester: false };
  // NB. Only a plain record number reaches sysparm_query: `^` or `=` in it would add query terms.
  if (!NUMBER.test(key)) return { ...base, exists: false, open: false };
  const authorization =
    config.auth.kind === 'bearer'
      ? `Bearer ${config.auth.token}`
      : `Basic ${Buffer.from(`${config.auth.username}:${config.auth.password}`).toString('base64')}`;
  const secret = config.auth.kind === 'bearer' ? config.auth.token : config.auth.password;
  const query = new URLSearchParams({
    sysparm_query: `number=${key.toUpperCase()}`,
    sysparm_limit: '1',
    sysparm_fields: FIELDS,
    sysparm_display_value: 'all',
    sysparm_exclude_reference_link: 'true',
  });
  const { json } = await callJson(
    config,
    { method: 'GET', path: `/api/now/table/${config.table}?${query}`, headers: { authorization }, secrets: [secret, authorization.split(' ')[1]!] },
    signal,
  );
  const parsed = answer.safeParse(json);
  if (!parsed.success) throw shapeProblem(`ServiceNow ${config.table} ${key}`, parsed.error.issues);
  const record = parsed.data.result[0];
  if (!record) return { ...base, exists: false, open: false };
  const state = record.state?.value ?? '';
  const assigneeEmail = (record['assigned_to.email']?.value ?? '').toLowerCase();
  const assigneeUser = record['assigned_to.user_name']?.value ?? '';
  const email = emailOf(principalId, people);
  return {
    ...base,
    exists: true,
    open: config.openStates.includes(state),
    status: record.state?.display_value ?? state,
    summary: (record.short_description?.display_value ?? record.short_description?.value ?? '').slice(0, 500),
    assignee: assigneeEmail || (record.assigned_to?.display_value ?? ''),
    assignedToRequester: (assigneeUser !== '' && assigneeUser === principalId) || (email !== undefined && assigneeEmail === email),
  };
}
