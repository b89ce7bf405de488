import { describe, expect, it } from 'vitest';
import { isLapseError, type LapseError } from '../domain/errors.js';
import { parseConfig } from './index.js';

const BASE = `version: 1
targets:
  prod-db: { connector: noop, entitlements: { readonly: {} } }
identity:
  ldap:
    url: URL
    bindDn: cn=lapse,dc=example,dc=com
    bindPassword: PASSWORD
    users: { baseDn: "ou=people,dc=example,dc=com" }
`;
const config = (url: string, password = '"${env:LDAP_PASSWORD}"', extra = '') =>
  parseConfig(BASE.replace('URL', url).replace('PASSWORD', password) + extra, 'lapse.yaml', { LDAP_PASSWORD: 'pw' });

function problemsOf(make: () => unknown): string {
  try {
    make();
  } catch (error) {
    expect(isLapseError(error, 'config_invalid')).toBe(true);
    return ((error as LapseError).details.problems as string[]).join('\n');
  }
  throw new Error('config was accepted');
}

describe('identity.ldap settings', () => {
  it('reads LDAPS with the password from a reference and the documented defaults', () => {
    const ldap = config('ldaps://dc.example.com').identity.ldap!;
    expect(ldap).toMatchObject({
      bindPassword: 'pw',
      startTls: false,
      intervalMs: 900_000,
      users: { filter: '(objectClass=inetOrgPerson)', nameAttribute: 'uid' },
    });
    expect(config('ldap://dc.example.com', undefined, '    startTls: true\n').identity.ldap!.startTls).toBe(true);
    expect(config('ldap://127.0.0.1:3890').identity.ldap!.url).toBe('ldap://127.0.0.1:3890');
  });

  it('refuses an inline password, a clear-text bind to another machine, and StartTLS over LDAPS', () => {
    expect(problemsOf(() => config('ldaps://dc.example.com', 'hunter2'))).toMatch(/bindPassword: give the password as a reference/);
    expect(problemsOf(() => config('ldap://dc.example.com'))).toMatch(/sends the bind password in clear/);
    expect(problemsOf(() => config('ldaps://dc.example.com', undefined, '    startTls: true\n'))).toMatch(/ldaps:\/\/ is TLS already/);
    expect(problemsOf(() => config('https://dc.example.com'))).toMatch(/ldaps/);
  });
});
