import type { AclScope } from './acl-rules.js';

/** One line of `ACL LIST`, reduced to what reconciliation needs. */
export interface AclUser {
  readonly name: string;
  readonly enabled: boolean;
  /** Key patterns the user (or one of its selectors) may touch; "*" for allkeys. */
  readonly keys: readonly string[];
  readonly channels: readonly string[];
}

/**
 * Parses `user <name> <rule> <rule>…`. User names and the patterns Lapse writes hold no spaces;
 * rules inside selectors (`(~x +get)`) count as the user's, since they grant access too.
 */
export function parseAclUser(line: string): AclUser | null {
  const [word, name, ...rules] = line.split(' ');
  if (word !== 'user' || !name) return null;
  const keys: string[] = [];
  const channels: string[] = [];
  let enabled = false;
  for (const raw of rules) {
    const rule = raw.replace(/^\(/, '').replace(/\)$/, '');
    if (rule === 'on') enabled = true;
    else if (rule === 'allkeys') keys.push('*');
    else if (rule === 'allchannels') channels.push('*');
    else if (rule.startsWith('&')) channels.push(rule.slice(1));
    else {
      const key = /^(?:%R?W?)?~(.*)$/.exec(rule);
      if (key) keys.push(key[1]!);
    }
  }
  return { name, enabled, keys, channels };
}

/**
 * Whether a user reaches everything an entitlement guards: all its key patterns (or, for a
 * channels-only entitlement, all its channel patterns), literally or through "*". An entitlement
 * that names neither is matched by nobody.
 */
export function scopeCoveredBy(scope: AclScope, user: AclUser): boolean {
  const keys = scope.allKeys ? ['*'] : [...scope.keys, ...scope.readKeys, ...scope.writeKeys];
  if (keys.length > 0) return keys.every((k) => user.keys.includes('*') || user.keys.includes(k));
  const channels = scope.allChannels ? ['*'] : scope.channels;
  if (channels.length > 0) return channels.every((c) => user.channels.includes('*') || user.channels.includes(c));
  return false;
}
