import { describe, expect, it } from 'vitest';
import { aclRules, commandRuleProblem, patternProblem } from './acl-rules.js';
import { parseAclUser, scopeCoveredBy } from './acl-list.js';
import { ephemeralAccountName, parseEphemeralAccountName } from './ephemeral-account.js';

describe('redis ACL rule grammar', () => {
  it.each(['app:*', 'cache:{user}:?', 'a', 'sess:[a-z]*', 'queue/jobs.#1', 'tenant@42:*'])('accepts the key pattern %s', (pattern) => {
    expect(patternProblem(pattern, 'key')).toBeNull();
  });

  it.each([
    ['*', /starts with a wildcard.*allKeys: true/],
    ['?*', /starts with a wildcard/],
    ['[a-z]*', /starts with a wildcard/],
    ['app:* nopass', /not a key pattern/],
    ['app:*\n+@all', /not a key pattern/],
    ['app:*\r', /not a key pattern/],
    ['>secret', /not a key pattern/],
    ['~app:*', /not a key pattern/],
    ['app:"x"', /not a key pattern/],
    ["app:'x'", /not a key pattern/],
    ['app:\\*', /not a key pattern/],
    ['app;FLUSHALL', /not a key pattern/],
    ['ключ:*', /not a key pattern: .*no spaces/],
    ['app:\u0000', /not a key pattern/],
    ['', /not a key pattern/],
    ['a'.repeat(300), /at most 256/],
  ])('refuses the key pattern %j', (pattern, problem) => {
    expect(patternProblem(pattern, 'key')).toMatch(problem);
  });

  it('refuses non-strings and shows hostile input escaped', () => {
    expect(patternProblem(42, 'key')).toMatch(/must be a key pattern string/);
    expect(patternProblem('x\u2028y', 'channel')).toContain('\\u2028');
  });

  it.each(['+@read', '-@dangerous', '+get', '-flushall', '+client|getname', '-config|set', '+@pubsub'])('accepts the command rule %s', (rule) => {
    expect(commandRuleProblem(rule, false)).toBeNull();
  });

  it.each([
    ['nopass', /not a command rule/],
    ['resetpass', /not a command rule/],
    ['reset', /not a command rule/],
    ['allkeys', /not a command rule/],
    ['allcommands', /not a command rule/],
    ['on', /not a command rule/],
    ['>hunter2', /not a command rule/],
    ['#abcd', /not a command rule/],
    ['+@read nopass', /not a command rule/],
    ['+get;flushall', /not a command rule/],
    ['+get +set', /not a command rule/],
    ['+GET', /not a command rule/],
    ['+@read\n+@all', /not a command rule/],
    ['+@nosuch', /unknown category/],
    ['+@all', /allowDangerousCommands/],
    ['+@admin', /allowDangerousCommands/],
    ['+@dangerous', /allowDangerousCommands/],
    ['+acl', /allowDangerousCommands/],
    ['+acl|setuser', /allowDangerousCommands/],
    ['+config|get', /allowDangerousCommands/],
    ['+flushall', /allowDangerousCommands/],
    ['+keys', /allowDangerousCommands/],
  ])('refuses the command rule %j', (rule, problem) => {
    expect(commandRuleProblem(rule, false)).toMatch(problem);
  });

  it('grants dangerous rules only when told, and always allows taking them away', () => {
    expect(commandRuleProblem('+@admin', true)).toBeNull();
    expect(commandRuleProblem('+flushall', true)).toBeNull();
    expect(commandRuleProblem('-@all', false)).toBeNull();
    expect(commandRuleProblem('nopass', true)).toMatch(/not a command rule/);
  });

  it('builds one rule per argument, resetting first so a repeat replaces the password', () => {
    const rules = aclRules(
      { keys: ['app:*'], readKeys: ['ro:*'], writeKeys: [], channels: ['news:*'], commands: ['+@read', '-@dangerous'], allKeys: false, allChannels: false },
      'pw',
    );
    expect(rules).toEqual(['reset', 'on', '>pw', '~app:*', '%R~ro:*', 'resetchannels', '&news:*', '+@read', '-@dangerous']);
  });
});

describe('redis ACL LIST lines', () => {
  it('reads keys, channels, selectors and whether the user is on', () => {
    const user = parseAclUser('user bob on #ab ~app:* %R~ro:* resetchannels &news:* -@all +@read (~sel:* +get)');
    expect(user).toEqual({ name: 'bob', enabled: true, keys: ['app:*', 'ro:*', 'sel:*'], channels: ['news:*'] });
    expect(parseAclUser('user off-guy off nopass allkeys allchannels +@all')).toEqual({ name: 'off-guy', enabled: false, keys: ['*'], channels: ['*'] });
    expect(parseAclUser('garbage')).toBeNull();
  });

  it('matches a user to an entitlement when it reaches every key pattern the entitlement names', () => {
    const scope = { keys: ['app:*', 'b:*'], readKeys: [], writeKeys: [], channels: [], commands: ['+@read'], allKeys: false, allChannels: false };
    expect(scopeCoveredBy(scope, { name: 'x', enabled: true, keys: ['app:*', 'b:*', 'c'], channels: [] })).toBe(true);
    expect(scopeCoveredBy(scope, { name: 'x', enabled: true, keys: ['*'], channels: [] })).toBe(true);
    expect(scopeCoveredBy(scope, { name: 'x', enabled: true, keys: ['app:*'], channels: [] })).toBe(false);
    const channelsOnly = { ...scope, keys: [], channels: ['news:*'] };
    expect(scopeCoveredBy(channelsOnly, { name: 'x', enabled: true, keys: ['*'], channels: ['news:*'] })).toBe(true);
    expect(scopeCoveredBy({ ...scope, keys: [] }, { name: 'x', enabled: true, keys: ['*'], channels: ['*'] })).toBe(false);
  });
});

describe('ephemeral account names', () => {
  const grant = (principalId: string, entitlement = 'readonly') => ({
    grantId: 'grt_01abc',
    principalId,
    target: { name: 'cache' },
    entitlement: { name: entitlement },
  });

  it.each(['alice', 'alice@example.com', 'al ice"; FLUSHALL', "o'brien\\x", 'ünïcode 🚀', 'a:b:c', '%41', 'x\r\ny'])(
    'round-trips the principal %j with no space, control character or extra separator',
    (principalId) => {
      const name = ephemeralAccountName(grant(principalId));
      expect(name).toMatch(/^lapse_grt_01abc:cache:readonly:[A-Za-z0-9._@%-]+$/);
      expect(parseEphemeralAccountName(name)).toEqual({ grantId: 'grt_01abc', target: 'cache', entitlement: 'readonly', principalId });
    },
  );

  it('refuses a grant id that could not be a name, and names it does not recognise', () => {
    expect(() => ephemeralAccountName({ ...grant('a'), grantId: 'grt x' })).toThrow(/cannot name an account/);
    expect(() => ephemeralAccountName(grant('🚀'.repeat(100)))).toThrow(/longer than 1024/);
    expect(parseEphemeralAccountName('default')).toBeNull();
    expect(parseEphemeralAccountName('lapse_probe_ab12')).toBeNull();
    expect(parseEphemeralAccountName('lapse_grt_1:cache:readonly:%E0%A4%A')).toBeNull();
    expect(parseEphemeralAccountName('lapse_grt_1:readonly:alice')).toBeNull();
  });
});
