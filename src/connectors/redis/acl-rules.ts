/**
 * The ACL rules an entitlement may ask for, checked against a small grammar before anything is
 * sent to Redis. Rules are built from typed settings (key patterns, channel patterns, command
 * rules), never taken verbatim, so a setting cannot smuggle in `nopass`, `>password`, `reset`,
 * `allkeys` or a second rule: each pattern and command rule must match the grammar as a whole.
 */

/** Command categories of Redis 7 (`ACL CAT`). */
export const COMMAND_CATEGORIES: ReadonlySet<string> = new Set([
  'keyspace',
  'read',
  'write',
  'set',
  'sortedset',
  'list',
  'hash',
  'string',
  'bitmap',
  'hyperloglog',
  'geo',
  'stream',
  'pubsub',
  'admin',
  'fast',
  'slow',
  'blocking',
  'dangerous',
  'connection',
  'transaction',
  'scripting',
]);

/** Granting these needs `allowDangerousCommands: true`: they administer, reconfigure or wipe the server. */
const DANGEROUS_CATEGORIES: ReadonlySet<string> = new Set(['all', 'admin', 'dangerous']);

/**
 * Redis 7's `@admin` and `@dangerous` commands (`ACL CAT dangerous`), with subcommands. A rule for
 * a whole command (`+client`) counts if any of its subcommands is here. `acl` and `config` would
 * let the ephemeral user grant itself anything, so these are never granted by accident.
 */
const DANGEROUS_COMMANDS: ReadonlySet<string> = new Set([
  'acl|deluser',
  'acl|dryrun',
  'acl|getuser',
  'acl|list',
  'acl|load',
  'acl|log',
  'acl|save',
  'acl|setuser',
  'acl|users',
  'bgrewriteaof',
  'bgsave',
  'client|kill',
  'client|list',
  'client|no-evict',
  'client|pause',
  'client|unblock',
  'client|unpause',
  'cluster|addslots',
  'cluster|addslotsrange',
  'cluster|bumpepoch',
  'cluster|count-failure-reports',
  'cluster|delslots',
  'cluster|delslotsrange',
  'cluster|failover',
  'cluster|flushslots',
  'cluster|forget',
  'cluster|meet',
  'cluster|replicas',
  'cluster|replicate',
  'cluster|reset',
  'cluster|saveconfig',
  'cluster|set-config-epoch',
  'cluster|setslot',
  'cluster|slaves',
  'config|get',
  'config|resetstat',
  'config|rewrite',
  'config|set',
  'debug',
  'failover',
  'flushall',
  'flushdb',
  'info',
  'keys',
  'lastsave',
  'latency|doctor',
  'latency|graph',
  'latency|histogram',
  'latency|history',
  'latency|latest',
  'latency|reset',
  'migrate',
  'module|list',
  'module|load',
  'module|loadex',
  'module|unload',
  'monitor',
  'pfdebug',
  'pfselftest',
  'psync',
  'replconf',
  'replicaof',
  'restore',
  'restore-asking',
  'role',
  'save',
  'shutdown',
  'slaveof',
  'slowlog|get',
  'slowlog|len',
  'slowlog|reset',
  'sort',
  'sort_ro',
  'swapdb',
  'sync',
]);
const DANGEROUS_CONTAINERS: ReadonlySet<string> = new Set([...DANGEROUS_COMMANDS].map((c) => c.split('|')[0]!));

/**
 * A key or channel pattern: Redis glob syntax over a conservative character set (no spaces, no
 * backslash escapes, nothing that could read as another rule), at most 256 characters, and it must
 * start with a literal character so it names a part of the keyspace: `*` or `?x` would cover
 * everything, which is what `allKeys: true` / `allChannels: true` say explicitly.
 */
const PATTERN = /^[A-Za-z0-9_:.\-/{}#@=,][A-Za-z0-9_:.\-/{}#@=,*?[\]^]{0,255}$/;

/** `+@read`, `-@dangerous`, `+get`, `-config|set`: one command rule. */
const COMMAND_RULE = /^([+-])(?:@([a-z]+)|([a-z][a-z0-9_-]{0,63})(?:\|([a-z][a-z0-9_-]{0,63}))?)$/;

export function patternProblem(pattern: unknown, what: 'key' | 'channel'): string | null {
  if (typeof pattern !== 'string') return `must be a ${what} pattern string`;
  if (PATTERN.test(pattern)) return null;
  const everything = what === 'key' ? 'allKeys: true' : 'allChannels: true';
  if (/^[*?[]/.test(pattern))
    return `"${shown(pattern)}" starts with a wildcard; start with a literal prefix (e.g. "app:*"), or set ${everything} for every ${what}`;
  return `"${shown(pattern)}" is not a ${what} pattern: use letters, digits and _ : . - / { } # @ = , with the wildcards * ? [ ] ^ (no spaces, quotes or backslashes; at most 256 characters)`;
}

export function commandRuleProblem(rule: unknown, allowDangerous: boolean): string | null {
  if (typeof rule !== 'string') return 'must be a command rule string such as "+@read" or "-flushall"';
  const match = COMMAND_RULE.exec(rule);
  if (!match)
    return `"${shown(rule)}" is not a command rule: write +@category, -@category, +command, -command or +command|subcommand (e.g. "+@read", "-@dangerous", "+get")`;
  const [, sign, category, command, subcommand] = match;
  if (category !== undefined && category !== 'all' && !COMMAND_CATEGORIES.has(category)) {
    return `"${rule}" names an unknown category; known: @all, ${[...COMMAND_CATEGORIES].map((c) => `@${c}`).join(', ')}`;
  }
  const dangerous =
    category !== undefined
      ? DANGEROUS_CATEGORIES.has(category)
      : subcommand !== undefined
        ? DANGEROUS_COMMANDS.has(`${command}|${subcommand}`)
        : DANGEROUS_CONTAINERS.has(command!);
  if (sign === '+' && dangerous && !allowDangerous) {
    return `"${rule}" grants administrative or destructive commands; set allowDangerousCommands: true on the entitlement if that is really meant`;
  }
  return null;
}

export interface AclScope {
  readonly keys: readonly string[];
  readonly readKeys: readonly string[];
  readonly writeKeys: readonly string[];
  readonly channels: readonly string[];
  readonly commands: readonly string[];
  readonly allKeys: boolean;
  readonly allChannels: boolean;
}

/**
 * The ACL SETUSER arguments after the user name, each one rule: `reset` first, so a repeated
 * provision replaces everything (including the old password) rather than adding to it.
 */
export function aclRules(scope: AclScope, password: string): string[] {
  return [
    'reset',
    'on',
    `>${password}`,
    ...(scope.allKeys ? ['allkeys'] : []),
    ...scope.keys.map((p) => `~${p}`),
    ...scope.readKeys.map((p) => `%R~${p}`),
    ...scope.writeKeys.map((p) => `%W~${p}`),
    'resetchannels',
    ...(scope.allChannels ? ['allchannels'] : []),
    ...scope.channels.map((p) => `&${p}`),
    ...scope.commands,
  ];
}

/** Keeps hostile input readable and short inside an error message. */
function shown(value: string): string {
  const printable = value.replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  return printable.length > 80 ? `${printable.slice(0, 80)}…` : printable;
}
