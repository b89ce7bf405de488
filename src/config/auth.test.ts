import { describe, expect, it } from 'vitest';
import { TEST_CONFIG } from '../../test/support/engine.js';
import { isLapseError } from '../domain/errors.js';
import { parseConfig } from './index.js';

const withAuth = (auth: string) => `${TEST_CONFIG}\nauth:\n${auth.replace(/^/gm, '  ')}\n`;

function problemsOf(yaml: string, env: NodeJS.ProcessEnv = {}): string[] {
  try {
    parseConfig(yaml, 'lapse.yaml', env);
  } catch (error) {
    if (isLapseError(error, 'config_invalid')) return (error.details.problems as string[]) ?? [error.message];
    throw error;
  }
  return [];
}

describe('config: auth', () => {
  it('defaults to local accounts, 30 m idle / 12 h absolute sessions, 100 failures per account per hour', () => {
    const { auth } = parseConfig(TEST_CONFIG, 'lapse.yaml', {});
    expect(auth).toEqual({
      publicUrl: undefined,
      oidc: undefined,
      local: { enabled: true },
      sessions: { idleTimeoutMs: 30 * 60_000, absoluteTimeoutMs: 12 * 3_600_000 },
      loginLimits: { perAccountPerHour: 100, perIpPerMinute: 30 },
      trustedProxies: [],
    });
  });

  it('takes trusted proxies as addresses or CIDR ranges, and refuses anything else, saying which', () => {
    expect(parseConfig(withAuth('trustedProxies: [10.0.0.0/8, 192.168.1.7, "::1", "fd00::/8"]'), 'lapse.yaml', {}).auth.trustedProxies).toEqual([
      '10.0.0.0/8',
      '192.168.1.7',
      '::1',
      'fd00::/8',
    ]);
    for (const bad of ['10.0.0.0/33', 'proxy.example.com', '10.0.0.1/8/2', '"::1/129"', '10.0.0/8', '"*"']) {
      expect(problemsOf(withAuth(`trustedProxies: [${bad}]`)).join('\n'), bad).toMatch(/auth\.trustedProxies\[0\]: write an IP address or a CIDR range/);
    }
  });

  it('reads OIDC settings with the client secret from a reference and the documented defaults', () => {
    const { auth } = parseConfig(
      withAuth('publicUrl: https://lapse.example.com/\noidc:\n  issuer: https://idp.example.com\n  clientId: lapse\n  clientSecret: ${env:OIDC_SECRET}'),
      'lapse.yaml',
      { OIDC_SECRET: 's3cret' },
    );
    expect(auth.publicUrl).toBe('https://lapse.example.com');
    expect(auth.oidc).toEqual({
      issuer: 'https://idp.example.com',
      clientId: 'lapse',
      clientSecret: 's3cret',
      scopes: ['openid', 'profile', 'email'],
      groupsClaim: 'groups',
      usernameClaim: 'preferred_username',
      allowInsecureHttp: false,
    });
  });

  it('refuses plain http, the insecure opt-in off loopback, a literal secret, scopes without openid, and nonsense', () => {
    expect(problemsOf(withAuth('oidc: { issuer: "http://idp.example.com", clientId: lapse }')).join('\n')).toMatch(/plain http; use https/);
    expect(problemsOf(withAuth('oidc: { issuer: "http://idp.example.com", clientId: lapse, allowInsecureHttp: true }')).join('\n')).toMatch(
      /only allowed for an issuer on 127\.0\.0\.1/,
    );
    expect(problemsOf(withAuth('oidc: { issuer: "http://127.0.0.1:9000", clientId: lapse, allowInsecureHttp: true }'))).toEqual([]);
    expect(problemsOf(withAuth('oidc: { issuer: "https://idp.example.com", clientId: lapse, clientSecret: hunter2 }')).join('\n')).toMatch(
      /clientSecret: give the secret as a reference/,
    );
    expect(problemsOf(withAuth('oidc: { issuer: "https://idp.example.com", clientId: lapse, scopes: [profile] }')).join('\n')).toMatch(/must include "openid"/);
    expect(problemsOf(withAuth('sessions: { idleTimeout: 13h, absoluteTimeout: 12h }')).join('\n')).toMatch(/idleTimeout must not exceed absoluteTimeout/);
    expect(problemsOf(withAuth('local: { enabled: false }')).join('\n')).toMatch(/nobody can sign in/);
    expect(problemsOf(withAuth('publicUrl: "ftp://x"')).join('\n')).toMatch(/auth\.publicUrl/);
    expect(problemsOf(withAuth('loginLimits: { perAccountPerHour: 0 }')).join('\n')).toMatch(/perAccountPerHour/);
    expect(problemsOf(withAuth('sesions: {}')).join('\n')).toMatch(/unknown key "sesions"/);
  });
});
