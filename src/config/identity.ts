import { z } from 'zod';
import { boundedText } from '../domain/text.js';
import { isLoopbackUrl } from './auth.js';
import { duration } from './schema-parts.js';
import { resolveReference, type SecretContext } from './secrets.js';
import type { IdentityConfig } from './types.js';

/**
 * The `identity:` block: where people and groups come from besides sign-in. `identity.ldap` is a
 * periodic sync from LDAP / Active Directory (docs/identity.md). The bind password is a secret
 * reference (never inline); the connection is LDAPS or StartTLS with the server's certificate
 * verified (optionally against `tls.ca`); plain `ldap://` without StartTLS only to this machine.
 */
const attribute = boundedText(64).regex(/^[A-Za-z][A-Za-z0-9-]*$/, 'an LDAP attribute name, e.g. uid');
const dn = boundedText(1024).min(1);
const filter = boundedText(2048).regex(/^\(.*\)$/s, 'an LDAP filter in parentheses, e.g. (objectClass=person)');

export const identitySchema = z
  .object({
    ldap: z
      .object({
        url: z.url({ protocol: /^ldaps?$/, message: 'write an ldaps:// (or ldap:// with startTls) URL' }).max(2048),
        startTls: z.boolean().default(false),
        bindDn: dn,
        bindPassword: boundedText(1024).min(1),
        tls: z
          .object({ ca: boundedText(1024).optional() })
          .strict()
          .prefault({}),
        interval: duration.prefault('15m'),
        timeout: duration.prefault('10s'),
        maxEntries: z.number().int().min(1).max(100_000).default(10_000),
        users: z
          .object({
            baseDn: dn,
            filter: filter.default('(objectClass=inetOrgPerson)'),
            nameAttribute: attribute.default('uid'),
            displayNameAttribute: attribute.default('cn'),
            emailAttribute: attribute.default('mail'),
            disabledFilter: filter.optional(),
          })
          .strict(),
        groups: z
          .object({
            baseDn: dn,
            filter: filter.default('(objectClass=groupOfNames)'),
            nameAttribute: attribute.default('cn'),
            memberAttribute: attribute.default('member'),
          })
          .strict()
          .optional(),
      })
      .strict()
      .optional(),
  })
  .strict()
  .prefault({});

export type ParsedIdentity = z.output<typeof identitySchema>;

/** The `identity:` block as the engine uses it: the bind password and CA resolved, transport checked. */
export function resolveIdentity(parsed: ParsedIdentity, secrets: SecretContext): IdentityConfig {
  const ldap = parsed.ldap;
  if (!ldap) return { ldap: undefined };
  const problems = secrets.problems;
  if (!ldap.bindPassword.startsWith('${'))
    problems.push('identity.ldap.bindPassword: give the password as a reference (${env:NAME} or ${file:path}), not inline');
  const bindPassword = resolveReference(ldap.bindPassword, 'identity.ldap.bindPassword', secrets);
  const url = new URL(ldap.url);
  if (url.protocol === 'ldaps:' && ldap.startTls) problems.push('identity.ldap.startTls: ldaps:// is TLS already; remove startTls or use ldap://');
  if (url.protocol === 'ldap:' && !ldap.startTls && !isLoopbackUrl(ldap.url)) {
    problems.push(
      `identity.ldap.url: "${ldap.url}" sends the bind password in clear; use ldaps:// or set startTls: true (plain ldap:// only to 127.0.0.1, localhost or [::1])`,
    );
  }
  const ca = ldap.tls.ca === undefined ? undefined : resolveReference(ldap.tls.ca, 'identity.ldap.tls.ca', secrets);
  if (ca !== undefined && ca !== '' && !ca.includes('-----BEGIN CERTIFICATE-----')) {
    problems.push('identity.ldap.tls.ca: must be a PEM certificate bundle; write ${file:/path/to/ca.pem}');
  }
  if (ldap.interval < 60_000) problems.push('identity.ldap.interval: at least 1m');
  if (ldap.timeout > 120_000) problems.push('identity.ldap.timeout: at most 2m');
  return {
    ldap: {
      url: ldap.url,
      startTls: ldap.startTls,
      bindDn: ldap.bindDn,
      bindPassword,
      ca: ca || undefined,
      intervalMs: ldap.interval,
      timeoutMs: ldap.timeout,
      maxEntries: ldap.maxEntries,
      users: ldap.users,
      groups: ldap.groups,
    },
  };
}
