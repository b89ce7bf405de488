import { randomBytes } from 'node:crypto';
import { AwsError, type AwsCall, type AwsCaller, type AwsFake, type XmlValue } from '../../aws/testing/aws-fake.js';

/**
 * STS and IAM as the `aws-iam-role` connector meets them, on top of the shared AWS fake (which
 * checks SigV4 and speaks the Query protocol). For tests and benchmarks only; it is NOT AWS.
 *
 * State: roles (path, MaxSessionDuration, a trust policy document), their inline policies (stored
 * as written, returned URL-encoded as IAM does), and the sessions AssumeRole issued. What it checks
 * and refuses, as AWS does:
 *
 * - AssumeRole: the caller must be trusted for `sts:AssumeRole`, plus `sts:TagSession` when it
 *   passes tags and `sts:SetSourceIdentity` when it passes a source identity (AccessDenied naming
 *   the action); `sts:ExternalId` when the trust policy asks for it; DurationSeconds 900 ..
 *   MaxSessionDuration (1 hour when chaining); RoleSessionName and SourceIdentity patterns; at most
 *   50 tags, transitive keys among them; a session policy of at most 2,048 characters that parses.
 *   Each issued session gets its own access key, which the fake then accepts, with its tags, source
 *   identity, issue time and expiry (ExpiredToken after it).
 * - Calls made with a session's key are refused (AccessDenied, "explicit deny") when a Deny
 *   statement of the role's inline policies matches: `Action` `*` or the call's action, `Resource`
 *   `*`, and conditions StringEquals / DateGreaterThan / DateLessThan on aws:PrincipalTag/*,
 *   aws:SourceIdentity, aws:CurrentTime and aws:TokenIssueTime. GetCallerIdentity is never refused
 *   (AWS answers it whatever the policies say). Allow statements are not evaluated: sessions may
 *   do anything not denied.
 * - IAM: GetRole, GetRolePolicy, PutRolePolicy (MalformedPolicyDocument for bad JSON, non
 *   alphanumeric or duplicate Sids; LimitExceeded, HTTP 409, when all of the role's inline policies
 *   together exceed 10,240 characters without whitespace), DeleteRolePolicy, ListRolePolicies,
 *   UpdateAssumeRolePolicy (2,048 characters). NoSuchEntity (404) for missing roles and policies.
 * - `refuse(action)` takes a permission away from Lapse's own identity (AccessDenied naming it);
 *   `staleReads(n)` makes the next n GetRolePolicy answers return the previous version, as IAM's
 *   eventual consistency may; `clockOffsetMs` moves the fake's clock for expiry and conditions.
 *
 * What it cannot prove: AWS's real policy evaluation (Allow statements, permission boundaries,
 * SCPs, every condition operator and key), how long IAM takes to propagate a change to every
 * endpoint, quotas other than the ones above, and the exact wording of AWS's messages.
 */

export const ACCOUNT = '111122223333';
export const LAPSE_IDENTITY = `arn:aws:iam::${ACCOUNT}:user/lapse`;
export const LAPSE_KEY = { accessKeyId: 'AKIALAPSEFAKE0000001', secretAccessKey: 'lapse-fake-secret-key-for-tests-only-00' };
const INLINE_BUDGET = 10_240;
const TRUST_BUDGET = 2_048;
const STS_NS = 'https://sts.amazonaws.com/doc/2011-06-15/';
const IAM_NS = 'https://iam.amazonaws.com/doc/2010-05-08/';
const NAME = /^[\w+=,.@-]{2,64}$/;
const TAG_KEY = /^[\p{L}\p{Z}\p{N}_.:/=+\-@]{1,128}$/u;
const TAG_VALUE = /^[\p{L}\p{Z}\p{N}_.:/=+\-@]{0,256}$/u;

interface Role {
  readonly name: string;
  readonly path: string;
  readonly arn: string;
  readonly id: string;
  maxSessionDuration: number;
  trust: string;
  readonly policies: Map<string, string>;
}

export interface Session {
  readonly roleArn: string;
  readonly roleName: string;
  readonly arn: string;
  readonly tags: Readonly<Record<string, string>>;
  readonly transitive: readonly string[];
  readonly sourceIdentity: string | undefined;
  readonly issuedAt: number;
  readonly expiresAt: number;
}

type Params = ReadonlyMap<string, string>;
type Json = Record<string, unknown>;

export class StsIamModel {
  readonly roles = new Map<string, Role>();
  readonly sessions = new Map<string, Session>();
  clockOffsetMs = 0;
  private readonly refused = new Set<string>();
  private readonly previous = new Map<string, string | undefined>();
  private stale = 0;

  constructor(private readonly fake: AwsFake) {
    fake.addKey(LAPSE_KEY.accessKeyId, LAPSE_KEY.secretAccessKey, LAPSE_IDENTITY);
    fake.inject((call) => this.authorize(call));
    fake.query('sts', '2011-06-15', STS_NS, {
      GetCallerIdentity: (_p, caller) => this.callerIdentity(caller),
      AssumeRole: (p, caller) => this.assumeRole(p, caller),
    });
    fake.query('iam', '2010-05-08', IAM_NS, {
      GetRole: (p) => ({ Role: this.roleXml(this.role(p.get('RoleName'))) }),
      GetRolePolicy: (p) => this.getRolePolicy(p),
      PutRolePolicy: (p) => this.putRolePolicy(p),
      DeleteRolePolicy: (p) => this.deleteRolePolicy(p),
      ListRolePolicies: (p) => ({ PolicyNames: [...this.role(p.get('RoleName')).policies.keys()], IsTruncated: false }),
      UpdateAssumeRolePolicy: (p) => this.updateTrust(p),
    });
  }

  now(): number {
    return Date.now() + this.clockOffsetMs;
  }

  /** A role trusting `principals` for AssumeRole, TagSession and SetSourceIdentity. */
  addRole(name: string, options: { principals?: string[]; maxSessionDuration?: number; path?: string; externalId?: string } = {}): string {
    const path = options.path ?? '/';
    const arn = `arn:aws:iam::${ACCOUNT}:role${path}${name}`;
    const statement: Json = {
      Effect: 'Allow',
      Principal: { AWS: options.principals ?? [LAPSE_IDENTITY] },
      Action: ['sts:AssumeRole', 'sts:TagSession', 'sts:SetSourceIdentity'],
    };
    if (options.externalId) statement.Condition = { StringEquals: { 'sts:ExternalId': options.externalId } };
    const trust = JSON.stringify({ Version: '2012-10-17', Statement: [statement] });
    this.roles.set(name, { name, path, arn, id: `AROA${code(17)}`, maxSessionDuration: options.maxSessionDuration ?? 3600, trust, policies: new Map() });
    return arn;
  }

  /** Replaces the role's trust policy (e.g. to leave out sts:TagSession, or to trust someone behind Lapse's back). */
  setTrust(roleName: string, document: Json): void {
    this.role(roleName).trust = JSON.stringify(document);
  }

  trust(roleName: string): Json {
    return JSON.parse(this.role(roleName).trust) as Json;
  }

  /** The inline policy as stored, or undefined. */
  policy(roleName: string, policyName: string): string | undefined {
    return this.role(roleName).policies.get(policyName);
  }

  setPolicy(roleName: string, policyName: string, document: string): void {
    this.remember(roleName, policyName);
    this.role(roleName).policies.set(policyName, document);
  }

  /** Takes a permission (e.g. `iam:PutRolePolicy`) away from Lapse's identity; `allow` gives it back. */
  refuse(action: string): void {
    this.refused.add(action);
  }

  allow(action: string): void {
    this.refused.delete(action);
  }

  /** The next `count` GetRolePolicy calls answer with the version before the last write. */
  staleReads(count: number): void {
    this.stale = count;
  }

  /** Whether a call by this session's key would be refused now (what a test or benchmark asks without a round trip). */
  refuses(accessKeyId: string, action = 'iam:GetRole'): boolean {
    const [service, operation] = action.split(':') as [string, string];
    const caller = { accessKeyId, identity: this.sessions.get(accessKeyId)?.arn ?? '' };
    return this.authorize({ service, operation, input: {}, caller }) !== undefined;
  }

  private role(name: string | undefined): Role {
    const role = this.roles.get(name ?? '');
    if (!role) throw new AwsError('NoSuchEntity', `The role with name ${name ?? ''} cannot be found.`, 404);
    return role;
  }

  private callerIdentity(caller: AwsCaller): XmlValue {
    const session = this.sessions.get(caller.accessKeyId);
    const userId = session ? `${this.roles.get(session.roleName)?.id ?? 'AROA'}:${session.arn.split('/').at(-1)}` : 'AIDALAPSEFAKE000001';
    return { UserId: userId, Account: ACCOUNT, Arn: caller.identity };
  }

  /** Runs before every operation: expired sessions, Lapse's missing permissions, explicit denies. */
  private authorize(call: AwsCall): AwsError | undefined {
    const action = `${call.service}:${call.operation}`;
    const input = call.input as Record<string, string>;
    const resource = input.RoleArn ?? (input.RoleName ? `role ${input.RoleName}` : '*');
    const session = this.sessions.get(call.caller.accessKeyId);
    if (!session) {
      if (!this.refused.has(action)) return undefined;
      return new AwsError(
        'AccessDenied',
        `User: ${call.caller.identity} is not authorized to perform: ${action} on resource: ${resource} because no identity-based policy allows the ${action} action`,
        403,
      );
    }
    const now = this.now();
    if (now >= session.expiresAt) return new AwsError('ExpiredToken', 'The security token included in the request is expired', 403);
    if (action === 'sts:GetCallerIdentity') return undefined;
    const role = this.roles.get(session.roleName);
    const denied = [...(role?.policies.values() ?? [])].some((text) => statements(JSON.parse(text) as Json).some((s) => deniesCall(s, action, session, now)));
    if (!denied) return undefined;
    return new AwsError(
      'AccessDenied',
      `User: ${session.arn} is not authorized to perform: ${action} on resource: ${resource} with an explicit deny in an identity-based policy`,
      403,
    );
  }

  private assumeRole(p: Params, caller: AwsCaller): XmlValue {
    const roleArn = p.get('RoleArn') ?? '';
    const sessionName = p.get('RoleSessionName') ?? '';
    if (!NAME.test(sessionName)) throw validation('roleSessionName', sessionName, 'Member must satisfy regular expression pattern: [\\w+=,.@-]*');
    const duration = Number(p.get('DurationSeconds') ?? 3600);
    if (!Number.isInteger(duration) || duration < 900 || duration > 43_200) {
      throw validation('durationSeconds', String(duration), 'Member must have value greater than or equal to 900 and less than or equal to 43200');
    }
    const sourceIdentity = p.get('SourceIdentity');
    if (sourceIdentity !== undefined && (!NAME.test(sourceIdentity) || sourceIdentity.toLowerCase().startsWith('aws:'))) {
      throw validation('sourceIdentity', sourceIdentity, 'Member must satisfy regular expression pattern: [\\w+=,.@-]*');
    }
    const tags = list(p, 'Tags').map((i) => [p.get(`Tags.member.${i}.Key`) ?? '', p.get(`Tags.member.${i}.Value`) ?? ''] as const);
    if (tags.length > 50) throw validation('tags', `${tags.length} tags`, 'Member must have length less than or equal to 50');
    for (const [key, value] of tags) {
      if (!TAG_KEY.test(key) || !TAG_VALUE.test(value)) throw validation('tags', key, 'Member must satisfy the tag key and value patterns');
    }
    const transitive = list(p, 'TransitiveTagKeys').map((i) => p.get(`TransitiveTagKeys.member.${i}`) ?? '');
    if (transitive.some((key) => !tags.some(([k]) => k === key))) {
      throw new AwsError('InvalidParameterValue', 'The specified transitive tag key must be included in the requested tags.');
    }
    const policy = p.get('Policy');
    if (policy !== undefined) {
      if (policy.length > 2048) throw validation('policy', '…', 'Member must have length less than or equal to 2048');
      try {
        JSON.parse(policy);
      } catch {
        throw new AwsError('MalformedPolicyDocument', 'The policy is not in the valid JSON format.');
      }
    }
    const role = [...this.roles.values()].find((r) => r.arn === roleArn);
    const deny = (action: string) =>
      new AwsError('AccessDenied', `User: ${caller.identity} is not authorized to perform: ${action} on resource: ${roleArn}`, 403);
    const needed = ['sts:AssumeRole', ...(tags.length > 0 ? ['sts:TagSession'] : []), ...(sourceIdentity !== undefined ? ['sts:SetSourceIdentity'] : [])];
    const parent = this.sessions.get(caller.accessKeyId);
    const principal = parent ? parent.roleArn : caller.identity;
    for (const action of needed) {
      if (!role || (!parent && this.refused.has(action)) || !trusts(JSON.parse(role.trust) as Json, principal, action, p.get('ExternalId'))) throw deny(action);
    }
    if (duration > role!.maxSessionDuration)
      throw new AwsError('ValidationError', 'The requested DurationSeconds exceeds the MaxSessionDuration set for this role.');
    if (parent && duration > 3600)
      throw new AwsError('ValidationError', 'The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.');
    const inherited = parent ? Object.fromEntries(parent.transitive.map((k) => [k, parent.tags[k]!])) : {};
    if (parent && tags.some(([k]) => k in inherited)) throw new AwsError('InvalidParameterValue', 'Cannot override transitive tags of the calling session.');
    const issuedAt = Math.floor(this.now() / 1000) * 1000;
    const session: Session = {
      roleArn: role!.arn,
      roleName: role!.name,
      arn: `arn:aws:sts::${ACCOUNT}:assumed-role/${role!.name}/${sessionName}`,
      tags: { ...inherited, ...Object.fromEntries(tags) },
      transitive: [...(parent?.transitive ?? []), ...transitive],
      sourceIdentity: parent?.sourceIdentity ?? sourceIdentity,
      issuedAt,
      expiresAt: issuedAt + duration * 1000,
    };
    const accessKeyId = `ASIA${code(16)}`;
    const secretAccessKey = randomBytes(30).toString('base64');
    const sessionToken = `FwoGZXIvYXdzE${randomBytes(96).toString('base64')}`;
    this.sessions.set(accessKeyId, session);
    this.fake.addKey(accessKeyId, secretAccessKey, session.arn, sessionToken);
    return {
      Credentials: {
        AccessKeyId: accessKeyId,
        SecretAccessKey: secretAccessKey,
        SessionToken: sessionToken,
        Expiration: new Date(session.expiresAt).toISOString(),
      },
      AssumedRoleUser: { AssumedRoleId: `${role!.id}:${sessionName}`, Arn: session.arn },
      PackedPolicySize: Math.ceil(((policy?.length ?? 0) + JSON.stringify(tags).length) / 20),
      SourceIdentity: session.sourceIdentity,
    };
  }

  private roleXml(role: Role): XmlValue {
    return {
      Path: role.path,
      RoleName: role.name,
      RoleId: role.id,
      Arn: role.arn,
      CreateDate: '2026-01-01T00:00:00Z',
      AssumeRolePolicyDocument: encodeURIComponent(role.trust),
      MaxSessionDuration: role.maxSessionDuration,
    };
  }

  private getRolePolicy(p: Params): XmlValue {
    const role = this.role(p.get('RoleName'));
    const name = p.get('PolicyName') ?? '';
    const key = `${role.name}\u0000${name}`;
    let text = role.policies.get(name);
    if (this.stale > 0 && this.previous.has(key)) {
      this.stale--;
      text = this.previous.get(key);
    }
    if (text === undefined) throw new AwsError('NoSuchEntity', `The role policy with name ${name} cannot be found.`, 404);
    return { RoleName: role.name, PolicyName: name, PolicyDocument: encodeURIComponent(text) };
  }

  private putRolePolicy(p: Params): XmlValue {
    const role = this.role(p.get('RoleName'));
    const name = p.get('PolicyName') ?? '';
    if (!/^[\w+=,.@-]{1,128}$/.test(name)) throw validation('policyName', name, 'Member must satisfy regular expression pattern: [\\w+=,.@-]+');
    const text = p.get('PolicyDocument') ?? '';
    checkPolicy(text);
    const total = [...role.policies].reduce((sum, [n, doc]) => sum + (n === name ? 0 : packedLength(doc)), packedLength(text));
    if (total > INLINE_BUDGET) throw new AwsError('LimitExceeded', `Maximum policy size of ${INLINE_BUDGET} bytes exceeded for role ${role.name}`, 409);
    this.setPolicy(role.name, name, text);
    return null;
  }

  private deleteRolePolicy(p: Params): XmlValue {
    const role = this.role(p.get('RoleName'));
    const name = p.get('PolicyName') ?? '';
    if (!role.policies.has(name)) throw new AwsError('NoSuchEntity', `The role policy with name ${name} cannot be found.`, 404);
    this.remember(role.name, name);
    role.policies.delete(name);
    return null;
  }

  private updateTrust(p: Params): XmlValue {
    const role = this.role(p.get('RoleName'));
    const text = p.get('PolicyDocument') ?? '';
    checkPolicy(text);
    if (packedLength(text) > TRUST_BUDGET) throw new AwsError('LimitExceeded', `Cannot exceed quota for ACLSizePerRole: ${TRUST_BUDGET}`, 409);
    role.trust = text;
    return null;
  }

  private remember(roleName: string, policyName: string): void {
    this.previous.set(`${roleName}\u0000${policyName}`, this.roles.get(roleName)?.policies.get(policyName));
  }
}

function validation(field: string, value: string, constraint: string): AwsError {
  return new AwsError(
    'ValidationError',
    `1 validation error detected: Value '${value.slice(0, 80)}' at '${field}' failed to satisfy constraint: ${constraint}`,
  );
}

/** The member indexes (1, 2, …) of a Query list parameter. */
function list(p: Params, name: string): number[] {
  const indexes: number[] = [];
  for (let i = 1; p.has(`${name}.member.${i}`) || p.has(`${name}.member.${i}.Key`); i++) indexes.push(i);
  return indexes;
}

function code(length: number): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  return Array.from(randomBytes(length), (b) => alphabet[b % 32]).join('');
}

/** Characters without whitespace outside strings, as IAM counts a policy's size. */
function packedLength(text: string): number {
  let length = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (inString) {
      length++;
      if (c === '\\') {
        length++;
        i++;
      } else if (c === '"') inString = false;
    } else if (!/\s/.test(c)) {
      length++;
      if (c === '"') inString = true;
    }
  }
  return length;
}

function checkPolicy(text: string): void {
  let document: Json;
  try {
    document = JSON.parse(text) as Json;
  } catch {
    throw new AwsError('MalformedPolicyDocument', 'Syntax errors in policy.');
  }
  const sids = statements(document)
    .map((s) => s.Sid)
    .filter((sid) => sid !== undefined);
  if (statements(document).length === 0) throw new AwsError('MalformedPolicyDocument', 'Policy statement must contain at least one statement.');
  if (sids.some((sid) => typeof sid !== 'string' || !/^[A-Za-z0-9]*$/.test(sid)))
    throw new AwsError('MalformedPolicyDocument', 'Statement IDs (SID) must be alpha-numeric.');
  if (new Set(sids).size !== sids.length) throw new AwsError('MalformedPolicyDocument', 'Statement IDs (SID) in a single policy must be unique.');
}

function statements(document: Json): Json[] {
  const s = document.Statement;
  return (Array.isArray(s) ? s : s === undefined ? [] : [s]) as Json[];
}

const values = (v: unknown): unknown[] => (Array.isArray(v) ? v : [v]);

function trusts(document: Json, principal: string, action: string, externalId: string | undefined): boolean {
  return statements(document).some((s) => {
    if (s.Effect !== 'Allow') return false;
    const aws = values((s.Principal as Json | undefined)?.AWS);
    const account = principal.split(':')[4];
    if (!aws.includes(principal) && !aws.includes(`arn:aws:iam::${account}:root`) && !aws.includes(account)) return false;
    if (!values(s.Action).some((a) => a === action || a === 'sts:*' || a === '*')) return false;
    const wanted = ((s.Condition as Json | undefined)?.StringEquals as Json | undefined)?.['sts:ExternalId'];
    return wanted === undefined || values(wanted).includes(externalId);
  });
}

/** Whether a Deny statement refuses `action` to the session now (the subset of conditions Lapse writes). */
function deniesCall(s: Json, action: string, session: Session, now: number): boolean {
  if (s.Effect !== 'Deny' || !values(s.Resource).includes('*')) return false;
  const service = action.split(':')[0];
  if (!values(s.Action).some((a) => a === '*' || a === action || a === `${service}:*`)) return false;
  const context = (key: string): string | undefined => {
    if (key === 'aws:SourceIdentity') return session.sourceIdentity;
    if (key === 'aws:CurrentTime') return new Date(now).toISOString();
    if (key === 'aws:TokenIssueTime') return new Date(session.issuedAt).toISOString();
    if (key.startsWith('aws:PrincipalTag/')) return session.tags[key.slice('aws:PrincipalTag/'.length)];
    return undefined;
  };
  return Object.entries((s.Condition ?? {}) as Record<string, Json>).every(([operator, keys]) =>
    Object.entries(keys).every(([key, wanted]) => {
      const actual = context(key);
      if (actual === undefined) return false;
      const options = values(wanted).map(String);
      if (operator === 'StringEquals') return options.includes(actual);
      if (operator === 'DateGreaterThan') return options.some((o) => Date.parse(actual) > Date.parse(o));
      if (operator === 'DateLessThan') return options.some((o) => Date.parse(actual) < Date.parse(o));
      return false;
    }),
  );
}
