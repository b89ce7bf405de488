import type { IntegrationsConfig } from '../config/types.js';

/**
 * A principal's email address, for systems that know people by email (PagerDuty users, ticket
 * assignees): the explicit `people.emails` entry, else the id itself when it is an address, else
 * `id@people.emailDomain`. Undefined when none applies.
 */
export function emailOf(principalId: string, people: IntegrationsConfig['people']): string | undefined {
  const mapped = people.emails[principalId];
  if (mapped) return mapped.toLowerCase();
  if (principalId.includes('@')) return principalId.toLowerCase();
  return people.emailDomain ? `${principalId}@${people.emailDomain}`.toLowerCase() : undefined;
}
