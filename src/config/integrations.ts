import { isLoopbackUrl } from './auth.js';
import type { ParsedIntegrations } from './integrations-schema.js';
import { resolveReference, type SecretContext } from './secrets.js';
import type { IntegrationEndpoint, IntegrationsConfig } from './types.js';

const MIN_WEBHOOK_SECRET = 32;

/**
 * The `integrations:` block as the engine uses it: secrets resolved from their references (a
 * literal token is refused, so it never sits in a reviewed file), and the transport checks zod
 * cannot express: https, or plain http to this machine only (local fakes, trials).
 */
export function resolveIntegrations(parsed: ParsedIntegrations, secrets: SecretContext): IntegrationsConfig {
  const problems = secrets.problems;
  const reference = (value: string, where: string): string => {
    if (!value.startsWith('${')) {
      problems.push(`${where}: give the secret as a reference (\${env:NAME} or \${file:path}), not inline`);
      return '';
    }
    return resolveReference(value, where, secrets);
  };
  /** `block` is the integration's path ("integrations.jira"), `key` the name of its URL setting. */
  const endpoint = (
    block: string,
    key: string,
    url: string,
    settings: { timeout: number; cacheTtl: number; tls: { ca?: string | undefined } },
  ): IntegrationEndpoint => {
    if (new URL(url).protocol === 'http:' && !isLoopbackUrl(url)) {
      problems.push(`${block}.${key}: "${url}" is plain http; use https (plain http is allowed only to 127.0.0.1, localhost or [::1])`);
    }
    const ca = settings.tls.ca === undefined ? undefined : resolveReference(settings.tls.ca, `${block}.tls.ca`, secrets);
    if (ca !== undefined && ca !== '' && !ca.includes('-----BEGIN CERTIFICATE-----')) {
      problems.push(`${block}.tls.ca: must be a PEM certificate bundle; write \${file:/path/to/ca.pem}`);
    }
    return { url: url.replace(/\/+$/, ''), ca: ca || undefined, timeoutMs: settings.timeout, cacheTtlMs: settings.cacheTtl };
  };

  const { pagerduty, oncallWebhook, jira, servicenow } = parsed;
  let webhookSecret = '';
  if (oncallWebhook) {
    webhookSecret = reference(oncallWebhook.secret, 'integrations.oncallWebhook.secret');
    if (webhookSecret && webhookSecret.length < MIN_WEBHOOK_SECRET) {
      problems.push(`integrations.oncallWebhook.secret: must be at least ${MIN_WEBHOOK_SECRET} random characters (e.g. \`openssl rand -hex 32\`)`);
    }
  }
  return {
    people: { emailDomain: parsed.people.emailDomain, emails: parsed.people.emails },
    pagerduty: pagerduty && {
      ...endpoint('integrations.pagerduty', 'apiUrl', pagerduty.apiUrl, pagerduty),
      token: reference(pagerduty.token, 'integrations.pagerduty.token'),
      users: pagerduty.users,
      services: pagerduty.services,
    },
    oncallWebhook: oncallWebhook && { ...endpoint('integrations.oncallWebhook', 'url', oncallWebhook.url, oncallWebhook), secret: webhookSecret },
    jira: jira && {
      ...endpoint('integrations.jira', 'url', jira.url, jira),
      email: jira.email,
      apiToken: reference(jira.apiToken, 'integrations.jira.apiToken'),
      openStatuses: jira.openStatuses,
      accounts: jira.accounts,
    },
    servicenow: servicenow && {
      ...endpoint('integrations.servicenow', 'url', servicenow.url, servicenow),
      auth:
        servicenow.token !== undefined
          ? { kind: 'bearer', token: reference(servicenow.token, 'integrations.servicenow.token') }
          : { kind: 'basic', username: servicenow.username ?? '', password: reference(servicenow.password ?? '', 'integrations.servicenow.password') },
      table: servicenow.table,
      openStates: servicenow.openStates,
    },
  };
}
